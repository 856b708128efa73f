"""`launch` under torchrun: this process is already one rank, so run the function here.

Why: the same worker a notebook launches should run unchanged as a script under
`torchrun --nproc-per-node N script.py` (one process per rank, started by torchrun's agent),
which is how it runs on a cluster. There `launch` starts nothing: it joins the process group
torchrun's environment describes (RANK, WORLD_SIZE, MASTER_ADDR, ...), runs the function on
this rank and gathers every rank's result, so the script sees the same list in rank order.
A rank `launch` itself started carries WORKER_FLAG and is not mistaken for a torchrun rank.
"""
from __future__ import annotations

import atexit
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from tplab.ranks.child import WORKER_FLAG, loopback_interface


def under_torchrun() -> bool:
    """Whether this process is a rank torchrun started (not one of `launch`'s own)."""
    return "TORCHELASTIC_RUN_ID" in os.environ and WORKER_FLAG not in os.environ


def run_here(fn, world_size, args, kwargs, backend, timeout, debug) -> list:
    """Under torchrun: this process is one rank; run fn here and share the results."""
    env_world = int(os.environ["WORLD_SIZE"])
    if env_world != world_size:
        raise ValueError(f"launch asked for {world_size} ranks but torchrun started {env_world} "
                         f"(--nproc-per-node x --nnodes); make them agree.")
    if not dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", 0))
        backend = backend or ("nccl" if torch.cuda.device_count() > local else "gloo")
        if debug:
            dist.set_debug_level(dist.DebugLevel.DETAIL)
        if os.environ.get("MASTER_ADDR") in ("127.0.0.1", "localhost"):
            os.environ.setdefault("GLOO_SOCKET_IFNAME", loopback_interface())  # one host: loopback
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
        atexit.register(_leave_group)  # we made the group: take it down cleanly at exit
    result = fn(*args, **kwargs)
    gathered = [None] * world_size
    dist.all_gather_object(gathered, result)
    global _finished
    _finished = True
    return gathered


# this torchrun rank got through fn and the gather: its peers will meet it at exit
_finished = False


def _leave_group() -> None:
    """Meet the other ranks, then destroy the group: a rank that exits while a peer's gloo
    threads still talk to it can abort ("terminate called without an active exception").
    A rank that failed does not wait for the others (they may be stuck in another collective):
    it takes its group down and leaves, so torchrun sees the failure at once."""
    if dist.is_initialized():
        try:
            if _finished:
                dist.barrier()
        finally:
            dist.destroy_process_group()

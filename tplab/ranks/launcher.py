"""Run one function on several real `torch.distributed` ranks, from a notebook cell or a script.

Why this exists: starting ranks from Jupyter is where distributed code usually goes wrong.
`spawn` cannot pickle a function defined in a cell, a failing rank's peers die of
"connection closed" and hide the real error, a stuck collective hangs the kernel, and
stray processes outlive the cell. `launch` starts the ranks, hosts the rendezvous store
itself on 127.0.0.1, gives every rank torchrun's environment variables (so the same
worker runs under `torchrun`), supervises them against one deadline, names the rank that
failed first with its traceback, and kills every rank before it returns.

Here is the parent side. How ranks come to exist (fork, or a clean fork server:
`start_method`) is decided in `start.py`, what a rank does in `child.py`, how its output comes
back in `output.py`, how failures are reported in `errors.py`; the deadline, error path,
output replay, cleanup and torchrun environment are the same for every start method. Under
`torchrun` nothing is started here: `torchrun.py` runs the function in this process.
"""
from __future__ import annotations

import os
import pickle
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from multiprocessing.connection import wait

import torch
import torch.distributed as dist

from tplab.ranks import child, lifecycle, output, torchrun
from tplab.ranks import start as rank_start
from tplab.ranks.errors import Failure, WorkerError, choose_root_cause

__all__ = ["launch", "WorkerError", "pick_backend"]

_GRACE_S = 1.0  # after a first failure, how long peers get to report theirs


def pick_backend(world_size: int, backend: str | None = None) -> str:
    """NCCL when every rank can have its own GPU, gloo (CPU) otherwise; `backend` overrides."""
    if backend is None:
        return "nccl" if torch.cuda.device_count() >= world_size else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo', 'nccl' or None (choose for me), not {backend!r}")
    return backend


def launch(fn, world_size: int, *args, backend: str | None = None, timeout: float = 60.0,
           debug: bool = False, threads: int = 1, start_method: str | None = None,
           **kwargs) -> list:
    """Run `fn(*args, **kwargs)` on `world_size` ranks; return their results in rank order.

    Inside `fn` the default process group is ready (`dist.get_rank()`, collectives) and
    RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT are set as torchrun sets them.
    Each rank's output is replayed here in rank order, prefixed ``[rank r]``.

    timeout: seconds for the whole launch; also the deadline of every collective.
    debug:   TORCH_DISTRIBUTED_DEBUG=DETAIL, so mismatched collectives fail at once.
    threads: torch threads per rank (one keeps ranks from fighting over cores).
    start_method: "fork", "forkserver" or "spawn"; None picks fork where it is safe
             (Linux, one thread, gloo) and forkserver elsewhere (see the module docstring).

    Raises WorkerError naming the rank that failed first (type, message, remote traceback),
    or the ranks still running at the deadline. Under `torchrun` (one process per rank
    already) it runs `fn` on this process's rank and returns every rank's result.
    """
    if not callable(fn):
        raise TypeError(f"launch needs a function to run on every rank, got {type(fn).__name__}")
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be an integer >= 1, got {world_size!r}")
    if not timeout or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(
            f"threads must be an integer >= 1 (torch threads per rank), got {threads!r}")
    if torchrun.under_torchrun():
        return torchrun.run_here(fn, world_size, args, kwargs, backend, timeout, debug)
    backend = pick_backend(world_size, backend)
    if backend == "nccl" and torch.cuda.device_count() < world_size:
        raise ValueError(f"backend 'nccl' needs one GPU per rank: {world_size} ranks, "
                         f"{torch.cuda.device_count()} GPU(s) visible. Use backend='gloo' "
                         f"or world_size <= {torch.cuda.device_count()}.")
    method = rank_start.pick_start_method(threads, backend, start_method)
    if method == "fork":
        if torch.cuda.is_initialized():
            raise RuntimeError(
                "CUDA is already initialised in this process, and forked ranks cannot use it. "
                "Pass start_method='forkserver', or restart the kernel and call tplab.launch "
                "before anything touches the GPU (move GPU work inside the function you launch).")
        rank_start.import_before_fork()
    return _Launch(fn, world_size, args, kwargs, backend, timeout, debug, threads, method).run()


class _Launch:
    """One launch: start the ranks, watch them against the deadline, clean up, report."""

    def __init__(self, fn, world_size, args, kwargs, backend, timeout, debug, threads, method):
        self.world_size, self.timeout, self.method = world_size, float(timeout), method
        self.job = child.Job(fn=fn, args=args, kwargs=kwargs, backend=backend,
                             world_size=world_size, timeout=float(timeout), debug=debug,
                             threads=threads)
        self.results: dict[int, object] = {}
        self.failures: dict[int, Failure] = {}
        self.procs: list = []

    def run(self) -> list:
        ctx, target, job = rank_start.context(self.method, self.job)
        self.tmp = tempfile.mkdtemp(prefix="tplab-launch-")
        sys.stdout.flush(), sys.stderr.flush()
        store = None
        try:
            conns = {}
            for rank in range(self.world_size):
                here, there = ctx.Pipe(duplex=True)
                p = ctx.Process(target=target, args=(job, rank, there, self.tmp, os.getpid()),
                                name=f"tplab-rank-{rank}", daemon=True)
                with rank_start.main_module_left_alone(self.method):
                    p.start()
                there.close()
                self.procs.append(p)
                conns[rank] = here
            # The store starts only now, so no rank inherits its server thread mid-flight
            # (forking a process with a running libuv thread can leave locks held).
            store = dist.TCPStore("127.0.0.1", 0, self.world_size, is_master=True,
                                  wait_for_workers=False, timeout=timedelta(seconds=self.timeout))
            for conn in conns.values():
                try:
                    conn.send_bytes(pickle.dumps(store.port))
                except OSError:  # that rank is already dead; supervising will say how
                    pass
            stuck = self._supervise(conns)
        finally:  # KeyboardInterrupt included: no rank outlives the launch
            lifecycle.kill_all(self.procs, forked=self.method == "fork")
            del store
            outputs = [output.read_output(self.tmp, r) for r in range(self.world_size)]
            shutil.rmtree(self.tmp, ignore_errors=True)
        output.replay(outputs)
        if stuck:
            raise WorkerError.timed_out(self.timeout, stuck, {r: outputs[r][1] for r in stuck},
                                        self.failures, returned=sorted(self.results))
        if self.failures:
            raise WorkerError.from_failures(choose_root_cause(self.failures), self.failures)
        return [self.results[r] for r in range(self.world_size)]

    def _supervise(self, readers) -> list[int]:
        """Collect results until every rank is done; return the ranks still running at the
        deadline."""
        deadline = time.monotonic() + self.timeout
        grace_until = None
        pending = set(range(self.world_size))
        while pending:
            now = time.monotonic()
            if grace_until is not None and now >= grace_until:
                return []  # a rank failed; the rest have had their chance to report
            if now >= deadline:
                stuck = sorted(r for r in pending if self.procs[r].is_alive())
                lifecycle.dump_stacks({r: self.procs[r].pid for r in stuck}, self.tmp)
                return stuck
            waits = [readers[r] for r in pending] + [self.procs[r].sentinel for r in pending]
            limit = min(deadline, grace_until or deadline) - now
            ready = wait(waits, timeout=max(limit, 0.0))
            for rank in sorted(pending):
                if (readers[rank] in ready or self.procs[rank].sentinel in ready) \
                        and self._collect(rank, readers[rank]):
                    pending.discard(rank)
            if self.failures and grace_until is None:
                grace_until = time.monotonic() + _GRACE_S
        return []

    def _collect(self, rank, reader) -> bool:
        """Read what `rank` sent, if anything; True once the rank has finished one way or
        another."""
        if reader.poll():
            try:
                kind, payload = pickle.loads(reader.recv_bytes())
            except (EOFError, OSError):  # it died before sending anything
                kind, payload = None, None
            except Exception as exc:  # a result that pickles but does not unpickle here
                unreadable = RuntimeError(
                    f"the value returned by rank {rank} could not be received: {exc!r}")
                kind, payload = "error", Failure.from_exception(rank, unreadable, time.monotonic())
            if kind == "ok":
                self.results[rank] = payload
                return True
            if kind == "error":
                self.failures[rank] = payload
                return True
        proc = self.procs[rank]
        if proc.is_alive():
            return False
        proc.join()
        if rank not in self.results and rank not in self.failures:
            self.failures[rank] = Failure.died(rank, proc.exitcode)
            if self.method != "fork" and not output.started(self.tmp, rank):
                self.failures[rank].message += (
                    f", before it started (start_method {self.method!r}); its error, if any, went "
                    f"to this process's stderr: the terminal, or Jupyter's log under `tplab lab`")
        return True

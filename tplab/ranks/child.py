"""The child side of `tplab.launch`: what one forked rank does, from fork to exit.

Order matters here. The thread count is set before any torch work, output goes to files
the parent replays (`output.py`), the rank dies with its parent, the rendezvous uses torchrun's
variables, and whatever happens the parent hears one message — the result, or the error stamped with
the time it happened (so the parent can tell the root cause from its echoes). A rank
started from the forkserver first takes on the launching process's environment and
working directory, then runs exactly the same steps.
"""
from __future__ import annotations

import dataclasses
import importlib
import io
import os
import pickle
import socket
import sys
import time
import types
from datetime import timedelta

import torch
import torch.distributed as dist

from tplab.ranks import lifecycle
from tplab.ranks.errors import Failure

WORKER_FLAG = "TPLAB_LAUNCH_WORKER"


@dataclasses.dataclass
class Job:
    fn: object
    args: tuple
    kwargs: dict
    backend: str
    world_size: int
    timeout: float
    debug: bool
    threads: int
    forked: bool = True  # a copy of the launching process (else started from the fork server)


def main_from_bytes(payload: bytes, rank: int, conn, tmp: str, parent_pid: int) -> None:
    """Entry point of a rank started from the fork server. The payload is (the launcher's
    environment, the cloudpickled job): the environment is in place before unpickling the job
    imports anything. (multiprocessing has already moved us to the launcher's working directory.)"""
    lifecycle.forget_fork_server()
    try:
        env, job_bytes = pickle.loads(payload)
        os.environ.clear()
        os.environ.update(env)
        job = pickle.loads(job_bytes)
    except BaseException as exc:  # noqa: BLE001 - the parent must hear why, then we leave
        conn.send_bytes(pickle.dumps(("error", Failure.from_exception(rank, RuntimeError(
            f"rank {rank} could not receive the function to run: {exc!r}"), time.monotonic()))))
        os._exit(1)
    main(job, rank, conn, tmp, parent_pid)


GROUP_MARGIN_S = 10.0


def main(job: Job, rank: int, conn, tmp: str, parent_pid: int) -> None:
    """Entry point of a forked rank. Never returns: exits with os._exit."""
    code = 1
    try:
        _become_rank(job, rank, tmp, parent_pid)
        if not conn.poll(job.timeout):  # the parent sends the store's port once it listens
            raise TimeoutError("no rendezvous port from the launching process")
        os.environ["MASTER_PORT"] = str(pickle.loads(conn.recv_bytes()))
        code = _run(job, rank, conn)
    finally:
        lifecycle.exit_flushed(code)  # skips the parent's atexit hooks (a notebook kernel's)


def _become_rank(job: Job, rank: int, tmp: str, parent_pid: int) -> None:
    torch.set_num_threads(job.threads)
    if job.forked:
        _refuse_more_threads(job.threads)
    lifecycle.become_child(rank, tmp, parent_pid)
    env = {
        "RANK": rank, "LOCAL_RANK": rank, "GROUP_RANK": 0, "WORLD_SIZE": job.world_size,
        "LOCAL_WORLD_SIZE": job.world_size, "MASTER_ADDR": "127.0.0.1",
        "OMP_NUM_THREADS": job.threads,
        # the parent hosts the store, as torchrun's agent does: every rank is a client
        "TORCHELASTIC_USE_AGENT_STORE": "True", WORKER_FLAG: "1",
    }
    if job.backend == "gloo":
        env["GLOO_SOCKET_IFNAME"] = loopback_interface()
    os.environ.update({k: str(v) for k, v in env.items()})


def _run(job: Job, rank: int, conn) -> int:
    try:
        if job.debug:
            os.environ["TORCH_DISTRIBUTED_DEBUG"] = "DETAIL"
            dist.set_debug_level(dist.DebugLevel.DETAIL)
        if job.backend == "nccl":
            torch.cuda.set_device(rank)
        # the launcher's deadline ends a stuck launch and names who waited where; a collective's
        # own timeout a little later never races it (a rank failing at the same moment would
        # be reported failed, not stuck)
        dist.init_process_group(job.backend, init_method="env://",
                                timeout=timedelta(seconds=job.timeout + GROUP_MARGIN_S))
        result = job.fn(*job.args, **job.kwargs)
        message = ("ok", _to_cpu(result))
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent
        message = ("error", Failure.from_exception(rank, exc, time.monotonic()))
    lifecycle.release_multiprocessing()  # now: the parent may kill us once it has the result
    try:
        conn.send_bytes(_dumps(message))
    except Exception as exc:  # the result would not pickle
        unsent = TypeError(f"the value returned by rank {rank} could not be sent back: {exc}")
        conn.send_bytes(pickle.dumps(("error", Failure.from_exception(rank, unsent,
                                                                      time.monotonic()))))
    finally:
        conn.close()
    if dist.is_initialized() and message[0] == "ok":
        # The finish line: a rank that returned early must not exit while a peer is
        # still connecting to it or still in a collective with it.
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()
    return 0 if message[0] == "ok" else 1


def _refuse_more_threads(limit: int) -> None:
    """In a forked rank, asking torch for more threads than the launch gave can hang for good
    (the parent's OpenMP pool did not survive the fork): say what to do instead."""
    original = torch.set_num_threads

    def set_num_threads(n: int) -> None:
        if n > limit:
            raise RuntimeError(
                f"torch.set_num_threads({n}) in a rank forked with threads={limit} can hang "
                f"(OpenMP's thread pool does not survive fork). Ask the launch instead: "
                f"tplab.launch(fn, world_size, threads={n}) starts such ranks from a clean "
                f"process.")
        original(n)

    torch.set_num_threads = set_num_threads


def _dumps(message) -> bytes:
    """Plain pickle, not multiprocessing's (that one would share tensors through file
    descriptors served by this process, which is about to exit). A class defined in a
    notebook cell is not importable in a rank started from the forkserver: cloudpickle
    then sends it by value."""
    try:
        return pickle.dumps(message)
    except Exception:
        return dumps_by_value(message)


def dumps_by_value(obj) -> bytes:
    """cloudpickle, plus modules of a ModuleType subclass sent by name.

    cloudpickle looks modules up by exact type, so a module whose class torch swapped
    (`torch.distributed.config` is a `ConfigModuleInstance`) would be pickled as an object
    and fail; it gets there as soon as a cell function uses `dist` and any attribute named
    `config` (`model.config`), because cloudpickle sends `dist`'s submodules named in the
    code. Importable modules go by name, as cloudpickle sends plain ones."""
    import cloudpickle

    class Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj):
            if (isinstance(obj, types.ModuleType) and type(obj) is not types.ModuleType
                    and sys.modules.get(obj.__name__) is obj):
                return importlib.import_module, (obj.__name__,)
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    Pickler(buffer, protocol=pickle.DEFAULT_PROTOCOL).dump(obj)
    return buffer.getvalue()


def loopback_interface() -> str:
    """The loopback interface's name: "lo" on Linux, "lo0" on macOS and the BSDs."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except (OSError, AttributeError):
        names = []
    fallback = "lo0" if sys.platform == "darwin" else "lo"
    return next((n for n in ("lo", "lo0") if n in names), fallback)


def _to_cpu(value):
    """Results cross to the parent, which must not touch CUDA: move tensors to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(_to_cpu(v) for v in value)
    if type(value) is dict:
        return {k: _to_cpu(v) for k, v in value.items()}
    return value

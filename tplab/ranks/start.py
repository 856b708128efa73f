"""How a launched rank comes to exist: forked from this process, or from a clean fork server.

Why there are two ways:

* "fork" (the default for one thread per rank on Linux): the rank is a copy of this
  process, so a function defined in a cell runs as it is, and a launch costs tens of ms.
* "forkserver" (the default for `threads > 1`, for NCCL, and on macOS): the rank is forked
  from a clean server process that imported torch but never ran a parallel region; the
  function and its arguments travel by value with `cloudpickle` (which handles cell
  functions). Forking a process that has run a multi-threaded torch op leaves GNU
  OpenMP's thread pool behind: a child that asks for more than one thread can wait
  forever for workers that do not exist (pytorch#17199; on a 2-vCPU AMD EPYC it hangs
  every time). One thread is safe, because torch then never enters OpenMP. macOS is not
  fork-safe at all (system frameworks), and a CUDA parent cannot be forked either. The
  server is started once per Python process (about 2 s: it imports torch), is reused by
  later launches, and exits with this process; each launch then costs about as much as
  a fork. The rank's environment variables and working directory are this process's at
  launch time; what a library read once when the server imported it (OpenMP's OMP_* and
  KMP_* settings, say) is what it was when the server started.
"""
from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import multiprocessing.spawn as mp_spawn
import os
import pickle
import sys

from tplab.ranks import child

START_METHODS = ("fork", "forkserver", "spawn")


def pick_start_method(threads: int, backend: str, start_method: str | None = None) -> str:
    """How ranks come to exist: fork only where it is safe (Linux, one thread, CPU), else a
    clean forkserver (spawn where there is none). `start_method` overrides."""
    available = mp.get_all_start_methods()
    if start_method is not None:
        if start_method not in START_METHODS:
            raise ValueError(f"start_method must be one of {START_METHODS} or None (choose for "
                             f"me), not {start_method!r}")
        if start_method not in available:
            raise ValueError(f"start_method {start_method!r} is not available on this platform "
                             f"({sys.platform}); use one of {available}")
        return start_method
    if sys.platform == "linux" and threads == 1 and backend == "gloo":
        return "fork"
    return "forkserver" if "forkserver" in available else "spawn"


# Modules torch imports lazily on a first backward() or DTensor call (sympy among them,
# ~1 s): imported once in the process ranks are forked from, every rank inherits them.
PRELOAD = ["torch", "torch.distributed", "torch.fx.experimental.symbolic_shapes", "cloudpickle",
           "tplab.ranks.child"]


def import_before_fork() -> None:
    """The same, in this process, before forking it."""
    import torch.fx.experimental.symbolic_shapes  # noqa: F401


@contextlib.contextmanager
def main_module_left_alone(method: str):
    """Start processes without multiprocessing's re-import of `__main__` in each child.

    forkserver and spawn normally run the launching script again (as `__mp_main__`) in
    every child, so that pickled references to its functions resolve: a script without
    an `if __name__ == "__main__":` guard would launch again from each rank, and a script
    read from stdin cannot be re-read at all. A rank here needs none of that: its job
    arrives by value (cloudpickle). So the preparation data loses its main-module entries
    while the ranks (and the fork server, on its first start) are started."""
    if method == "fork":  # nothing is prepared for a fork
        yield
        return
    original = mp_spawn.get_preparation_data

    def without_main(name):
        data = original(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        data.pop("main_path", None)
        return data

    mp_spawn.get_preparation_data = without_main
    try:
        yield
    finally:
        mp_spawn.get_preparation_data = original


def context(method: str, job):
    """The multiprocessing context, and what each rank is given: the job itself when
    forked (a copy of this process has it already), its cloudpickle bytes otherwise."""
    ctx = mp.get_context(method)
    if method == "fork":
        return ctx, child.main, job
    if method == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)  # takes effect when the server (re)starts
    try:
        clean_job = child.dumps_by_value(dataclasses.replace(job, forked=False))
        payload = pickle.dumps((dict(os.environ), clean_job))
    except Exception as exc:
        raise TypeError(f"start_method {method!r} sends the function and its arguments to the "
                        f"ranks by value, and they could not be serialised: {exc}. Pass plain data "
                        f"(tensors, numbers, lists), or create the object inside the function; "
                        f"threads=1 on Linux forks instead, which needs no serialising.") from exc
    return ctx, child.main_from_bytes, payload

"""The life of a child process the course starts — a rank, or a serving worker — from start to
exit, seen from both sides.

Why one module: `tplab.launch`'s ranks and `tplab.serve`'s workers must both be impossible to
orphan and easy to diagnose, and the ways to get that right are few and subtle:

* the child leads its own process group, so the parent can kill it *and anything it started*;
* it dies with its parent (Linux's PR_SET_PDEATHSIG where it was forked; a watching thread
  where that signal cannot reach it: a fork-server child, macOS);
* its stdout/stderr go to files the parent replays (`output.py`), and SIGUSR1 makes it write
  every thread's Python stack there, so a stuck child can be named with where it was;
* it exits with `os._exit` after flushing: a notebook kernel's atexit hooks never run in it.
"""
from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import sys
import threading
import time

from tplab.ranks import output

__all__ = ["become_child", "die_with_parent", "forget_fork_server", "exit_flushed",
           "release_multiprocessing",
           "dump_stacks", "kill_all", "DUMP_WAIT_S"]

DUMP_WAIT_S = 2.0  # at a deadline, how long stuck children get to write their stacks


def become_child(index: int, tmp: str, parent_pid: int) -> None:
    """Everything a new child does before its own work: own process group, die with the
    parent, output to `tmp`'s files for `index`, a stack dump on SIGUSR1, Ctrl-C left to the
    parent."""
    os.setpgid(0, 0)  # own process group: the parent can kill the child and all it started
    die_with_parent(parent_pid)
    output.redirect_output(tmp, index)
    # all_threads: the kernel may hand SIGUSR1 to any thread (gloo's, OpenMP's); with
    # all_threads=False a signal that lands on a thread Python does not know writes nothing
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C is the parent's to handle


def release_multiprocessing() -> None:
    """Run the clean-up of what this process itself made with multiprocessing, as a normal
    exit would (finalizers of priority >= 0).

    A child leaves by `os._exit`, or is killed once the parent has its result: without this,
    a named semaphore it made (a lock of a spawn or forkserver context; torch.compile's worker
    pool makes one) is never unlinked, and the resource tracker the child shares with its
    parent warns "leaked semaphore objects" when the parent exits. multiprocessing's
    finalizers skip objects made in another process, so the parent's (copied by a fork) are
    left alone."""
    try:
        import multiprocessing.util
        multiprocessing.util._run_finalizers(0)
    except Exception:  # noqa: BLE001 - cleaning up must not turn a result into a failure
        pass


def exit_flushed(code: int) -> None:
    """Flush stdout/stderr and leave at once, skipping the parent's atexit hooks (a notebook
    kernel's, say). Never returns."""
    release_multiprocessing()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def forget_fork_server() -> None:
    """Close our copy of the fork server's "alive" pipe. The server exits when the launcher
    does only once nobody else holds that pipe open; a child holding it would keep the server,
    and so itself (its death signal is tied to the server), alive after a killed launcher."""
    try:
        import multiprocessing.forkserver as mp_forkserver

        fd = getattr(mp_forkserver._forkserver, "_forkserver_alive_fd", None)
        if fd is not None:
            os.close(fd)
            mp_forkserver._forkserver._forkserver_alive_fd = None
    except (ImportError, OSError):
        pass


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this child if the launching process dies (a killed kernel, say).

    A forked child's parent is the launcher, and Linux does it for us (PR_SET_PDEATHSIG).
    A fork-server child's parent is the server, which exits when the launcher does (then
    the same signal fires); a thread also watches the launcher itself, as it does on
    macOS, where there is no such signal."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        armed = True
    except (OSError, AttributeError):
        armed = False
    forked = os.getppid() == parent_pid
    if not forked and not _alive(parent_pid):  # the launcher died before we got here
        os._exit(1)
    if not (forked and armed):
        threading.Thread(target=_watch_launcher, args=(parent_pid,), daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch_launcher(pid: int) -> None:
    while _alive(pid):
        time.sleep(0.5)
    os._exit(1)


def dump_stacks(pids: dict[int, int], tmp: str, wait_s: float = DUMP_WAIT_S) -> None:
    """Ask stuck children ({index: pid}) to write their Python stacks (faulthandler on SIGUSR1)
    before they are killed, and wait briefly until every dump is there."""
    for pid in pids.values():
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
    # faulthandler writes from the signal handler, but a loaded machine may not run the
    # child at once: wait (briefly) until every dump is there, or a stuck child looks idle
    until = time.monotonic() + wait_s
    while pids and time.monotonic() < until:
        if all(output.stack_dump(output.read_output(tmp, i)[1]) for i in pids):
            time.sleep(0.1)  # the rest of a dump that has begun
            break
        time.sleep(0.05)


def kill_all(procs, forked: bool) -> None:
    """SIGKILL every child's process group (the child and anything it started), then reap.

    A fork-server child is reaped by the server as soon as it exits: its pid may then be
    someone else's, so only one still running is signalled. A forked child stays ours (a
    zombie) until joined below, so its group is killed even after it exited."""
    for p in procs:
        if p.pid is not None and (forked or p.exitcode is None):
            for kill in (os.killpg, os.kill):  # its group; itself, if it had no group yet
                try:
                    kill(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
    for p in procs:
        p.join(timeout=5)

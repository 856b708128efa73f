"""Task parallelism: a pool of worker processes, each with its own replica, fed from a queue.

Why this shape: requests are independent, so nothing is communicated between workers; the only
question is scheduling — which worker gets which request, and in what order. The parent holds
the queue and hands out one request at a time, so it always knows what each worker is doing.
The rules (policies "contiguous", "round-robin", "dynamic"; orders "fifo", "sjf"; retries) are
`scheduling.Scheduler`'s; this file is the processes. `arrivals`: each request's submit time in
seconds from t0 (default: all at 0). t0 is when every worker has loaded its replica: loading is
not served time.

Failure, as `tplab.launch` handles it for ranks (and with the same `tplab.ranks.lifecycle`): a
worker that dies mid-request (killed, a segfault) has its request handed to another worker; a
result that reached the parent is never served again. An exception in `engine.run` or
`engine.load` ends the run with `ServeError` naming the worker, the request and the remote
traceback. Two deadlines: `load_timeout` seconds (default `timeout`) for every replica to load,
then `timeout` seconds from t0 to serve; past either, the workers still busy are named with
their request (or "still loading") and their Python stack. Every worker process is gone when
`serve` returns or raises. Workers are forked where that is safe (one thread, Linux), else
started from a clean fork server, exactly as `tplab.ranks.start` decides for ranks.
"""
from __future__ import annotations

import os
import pickle
import shutil
import sys
import tempfile
import time
import traceback
from multiprocessing.connection import wait

from tplab.ranks import child, lifecycle, output
from tplab.ranks import start as rank_start
from tplab.ranks.errors import Failure
from tplab.serve.records import Report
from tplab.serve.scheduling import (
    ORDERS,
    POLICIES,
    Scheduler,
    ServeError,
    deadline_missed,
    static_shares,
    validate,
)

__all__ = ["serve", "ServeError", "POLICIES", "ORDERS", "static_shares"]


def serve(requests, engine, workers: int = 2, policy: str = "dynamic", order: str = "fifo",
          timeout: float = 120.0, arrivals=None, load_timeout: float | None = None) -> Report:
    """Serve `requests` on `workers` processes, each running its own `engine` (see
    `tplab.serve.scheduling` for policies and order, this module's docstring for arrivals and
    failures); a Report with one Record per request."""
    requests = list(requests)
    validate(requests, engine, workers, policy, order, timeout, arrivals, load_timeout)
    pool = _Pool(requests, engine, workers, policy, order, float(timeout), arrivals)
    pool.load_timeout = float(load_timeout or timeout)
    return pool.run()


def _worker(index, conn, engine, tmp, parent_pid, threads, by_value):
    """One worker, from start to exit (`tplab.ranks.lifecycle`: own process group, dies with
    the parent, output to files, a stack on SIGUSR1): load the replica, then serve requests
    from the pipe until told to stop (None)."""
    if by_value:
        lifecycle.forget_fork_server()
    code = 1
    try:
        lifecycle.become_child(index, tmp, parent_pid)
        if by_value:
            env, engine_bytes = pickle.loads(engine)
            os.environ.update(env)
            engine = pickle.loads(engine_bytes)
        import torch

        torch.set_num_threads(threads)
        code = _serve_requests(engine, conn)
    finally:
        lifecycle.exit_flushed(code)


def _serve_requests(engine, conn) -> int:
    request = None
    try:
        engine.load()
        conn.send(("ready", time.perf_counter()))
        while (request := conn.recv()) is not None:
            started = time.perf_counter()
            tokens = [int(t) for t in engine.run(request)]
            conn.send(("done", request.id, started, time.perf_counter(), tokens))
        return 0
    except EOFError:  # the parent went away
        return 1
    except BaseException as exc:  # noqa: BLE001 - the parent must hear it, with the request
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        conn.send(("error", None if request is None else request.id, text))
        return 1


class _Pool(Scheduler):
    """One run: start the workers, hand out requests, watch the deadline, clean up."""

    def __init__(self, requests, engine, workers, policy, order, timeout, arrivals):
        super().__init__(requests, workers, policy, order, arrivals)
        self.engine, self.timeout, self.load_timeout = engine, timeout, timeout
        self.procs, self.conns = [], []

    def run(self) -> Report:
        threads = getattr(self.engine, "threads", 1)
        method = rank_start.pick_start_method(threads, "gloo")
        self.tmp = tempfile.mkdtemp(prefix="tplab-serve-")
        try:
            self._start(method, threads)
            self.deadline = time.monotonic() + self.load_timeout
            self._wait_loaded()
            self.deadline = time.monotonic() + self.timeout
            self._serve()
        finally:  # KeyboardInterrupt included: no worker outlives the run
            self._stop(method)
            outputs = [output.read_output(self.tmp, w) for w in range(self.n)]
            shutil.rmtree(self.tmp, ignore_errors=True)
            for w, (out, err) in enumerate(outputs):
                for line in out.splitlines():
                    print(f"[worker {w}] {line}")
                for line in output.strip_stack_dump(err).splitlines():
                    print(f"[worker {w}] {line}", file=sys.stderr)
        return self.report()

    def _start(self, method, threads):
        import multiprocessing as mp

        ctx = mp.get_context(method)
        if method == "fork":
            rank_start.import_before_fork()
            engine = self.engine
        else:
            if method == "forkserver":
                ctx.set_forkserver_preload([*rank_start.PRELOAD, "tplab.serve.pool"])
            engine = pickle.dumps((dict(os.environ), child.dumps_by_value(self.engine)))
        sys.stdout.flush(), sys.stderr.flush()
        for w in range(self.n):
            here, there = ctx.Pipe(duplex=True)
            p = ctx.Process(target=_worker, name=f"tplab-serve-{w}", daemon=True,
                            args=(w, there, engine, self.tmp, os.getpid(), threads,
                                  method != "fork"))
            with rank_start.main_module_left_alone(method):
                p.start()
            there.close()
            self.procs.append(p)
            self.conns.append(here)

    def _wait_loaded(self):
        loading = set(range(self.n))
        while loading:
            for w in self._ready(loading, self.deadline):
                message = self._receive(w)
                if message is not None and message[0] == "ready":
                    loading.discard(w)
                elif message is not None:
                    self.raise_error(w, message[1], message[2])
                else:
                    loading.discard(w)
                    self._died(w)
            if loading and time.monotonic() >= self.deadline:
                self._timed_out({w: None for w in loading})
        self.t0 = time.perf_counter()

    def _serve(self):
        while not self.finished():
            now = time.perf_counter() - self.t0
            self.dispatch(now)
            until = min(self.deadline, time.monotonic() + self.next_arrival(now))
            for w in self._ready(self.alive, until):
                message = self._receive(w)
                if message is None:
                    self._died(w)
                elif message[0] == "done":
                    _, request_id, started, finished, tokens = message
                    self.done(w, request_id, started - self.t0, finished - self.t0, tokens)
                else:
                    self.raise_error(w, message[1], message[2])
            if time.monotonic() >= self.deadline and not self.finished():
                self._timed_out(dict(self.busy))

    def hand_out(self, w, request):
        """Send one request to worker w down its pipe."""
        try:
            self.conns[w].send(request)
        except OSError:  # it died before we could hand it over: its exit is seen next
            pass

    def _ready(self, workers, until):
        """The workers among `workers` with a message or an exit, waiting until `until`
        (monotonic) at most."""
        by_handle = {}
        for w in workers:
            by_handle[self.conns[w]] = w
            by_handle[self.procs[w].sentinel] = w
        ready = wait(list(by_handle), timeout=max(0.0, until - time.monotonic()))
        return sorted({by_handle[h] for h in ready})

    def _receive(self, w):
        """The worker's next message, or None if it died without one (a result it sent before
        dying is still read: it was served, and will not be served again)."""
        conn = self.conns[w]
        try:
            if conn.poll():
                return conn.recv()
        except (EOFError, OSError):
            pass
        self.procs[w].join(timeout=5)
        return None

    def _died(self, w):
        self.lose(w, Failure.died(w, self.procs[w].exitcode).message.replace(
            f"rank {w}", f"worker {w}"))

    def _timed_out(self, stuck: dict):
        """Raise at the deadline, naming each busy worker's request and where it was."""
        live = {w: p for w, p in stuck.items() if self.procs[w].is_alive()}
        lifecycle.dump_stacks({w: self.procs[w].pid for w in live}, self.tmp)
        pairs = [(w, None if p is None else self.requests[p].id) for w, p in sorted(live.items())]
        parts = []
        for w, rid in pairs:
            what = "still loading its replica" if rid is None else f"still running request {rid}"
            stack = output.stack_dump(output.read_output(self.tmp, w)[1])
            parts.append(f"worker {w} is {what}" + (f"; its stack:\n{stack}" if stack else ""))
        unserved = self.unserved()
        if not parts:  # nobody busy: the rest had not arrived, or their workers were gone
            parts = [f"no worker was busy; requests {unserved} were still waiting to arrive "
                     f"(arrivals after the deadline?)"]
        raise ServeError(deadline_missed(self.timeout, self.load_timeout, pairs)
                         + "\n".join(parts), stuck=pairs, unserved=unserved,
                         worker=pairs[0][0] if pairs else None,
                         request=pairs[0][1] if pairs else None)

    def _stop(self, method):
        """Tell idle workers to stop, give them a second, then SIGKILL every worker's process
        group and reap."""
        for w in self.alive - set(self.busy):
            try:
                self.conns[w].send(None)
            except OSError:
                pass
        quit_by = time.monotonic() + 1.0
        for p in self.procs:
            p.join(timeout=max(0.0, quit_by - time.monotonic()))
        lifecycle.kill_all(self.procs, forked=method == "fork")
        for conn in self.conns:
            conn.close()


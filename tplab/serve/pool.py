"""Task parallelism: a pool of worker processes, each with its own replica, fed from a queue.

Why this shape: requests are independent, so nothing is communicated between workers; the only
question is scheduling — which worker gets which request, and in what order. The parent holds
the queue and hands out one request at a time, so it always knows what each worker is doing:

* `policy="contiguous"`: static, the first ceil(n/w) requests (in the order given) to worker 0,
  the next to worker 1, ...; `"round-robin"`: static, request i to worker i mod w. A static
  worker serves only its share, even when another worker is idle.
* `policy="dynamic"`: one shared queue; a worker that finishes gets the next request at once.
* `order="fifo"` serves a queue in arrival order, `"sjf"` the shortest `max_new_tokens` first
  (among requests that have arrived; non-preemptive). For static policies the order applies
  within each worker's share (the shares do not change), so fifo vs sjf is the order alone.
* `arrivals`: each request's submit time in seconds from t0 (default: all at 0). t0 is when every
  worker has loaded its replica: loading is not served time.

Failure, as `tplab.launch` handles it for ranks: a worker that dies mid-request (killed, a
segfault) has its request handed to another worker (`Record.attempts` counts the hand-outs); a
result that reached the parent is never served again. A static worker's remaining share is
dealt round-robin to the survivors. If every worker dies, `ServeError` says which requests were
left. An exception in `engine.run` or `engine.load` ends the run with `ServeError` naming the
worker, the request and the remote traceback. One deadline (`timeout`, loading included): the
workers still busy are named with their request and their Python stack. Every worker process
is gone when `serve` returns or raises. Workers are forked where that is safe (one thread,
Linux), else started from a clean fork server, exactly as `tplab.ranks.start` decides for ranks.
"""
from __future__ import annotations

import faulthandler
import math
import os
import pickle
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import deque
from multiprocessing.connection import wait

from tplab.ranks import child, output
from tplab.ranks import start as rank_start
from tplab.ranks.errors import Failure
from tplab.serve.records import Record, Report

__all__ = ["serve", "ServeError", "POLICIES", "ORDERS", "static_shares"]

POLICIES = ("contiguous", "round-robin", "dynamic")
ORDERS = ("fifo", "sjf")
_DUMP_WAIT_S = 2.0  # at the deadline, how long busy workers get to write their stacks


class ServeError(RuntimeError):
    """A serving run failed. `worker` and `request` (ids; None where it does not apply),
    `traceback` (the worker's, if it raised), `stuck` ([(worker, request id or None while
    loading)] at the deadline), `unserved` (request ids without a result)."""

    def __init__(self, message, worker=None, request=None, traceback="", stuck=(), unserved=()):
        super().__init__(message)
        self.worker, self.request, self.traceback = worker, request, traceback
        self.stuck, self.unserved = list(stuck), list(unserved)


def static_shares(n: int, workers: int, policy: str) -> list[list[int]]:
    """Positions 0..n-1 dealt to `workers` by a static policy: "contiguous" (blocks of
    ceil(n/w)) or "round-robin" (i to i mod w)."""
    if policy == "contiguous":
        size = math.ceil(n / workers)
        return [list(range(w * size, min(n, (w + 1) * size))) for w in range(workers)]
    if policy == "round-robin":
        return [list(range(w, n, workers)) for w in range(workers)]
    raise ValueError(f"{policy!r} is not a static policy; those are 'contiguous', 'round-robin'")


def serve(requests, engine, workers: int = 2, policy: str = "dynamic", order: str = "fifo",
          timeout: float = 120.0, arrivals=None) -> Report:
    """Serve `requests` on `workers` processes, each running its own `engine` (see the module
    docstring for policies, order, arrivals and failures); a Report with one Record per request."""
    requests = list(requests)
    _validate(requests, engine, workers, policy, order, timeout, arrivals)
    arrivals = [0.0] * len(requests) if arrivals is None else [float(a) for a in arrivals]
    return _Pool(requests, engine, workers, policy, order, float(timeout), arrivals).run()


def _validate(requests, engine, workers, policy, order, timeout, arrivals):
    if not requests:
        raise ValueError("no requests to serve")
    ids = [r.id for r in requests]
    if len(set(ids)) != len(ids):
        raise ValueError("request ids must be distinct: each is served exactly once")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if not timeout or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if not (callable(getattr(engine, "load", None)) and callable(getattr(engine, "run", None))):
        raise TypeError(f"engine must have load() and run(request), got {type(engine).__name__}")
    if arrivals is not None and (len(arrivals) != len(requests) or min(arrivals) < 0):
        raise ValueError(f"arrivals must give one time >= 0 per request ({len(requests)}), "
                         f"got {len(arrivals)}")


def _worker(index, conn, engine, tmp, parent_pid, threads, by_value):
    """One worker, from start to exit: own process group, output to files, a stack on SIGUSR1;
    load the replica, then serve requests from the pipe until told to stop (None)."""
    if by_value:
        child._forget_fork_server()
    code = 1
    try:
        os.setpgid(0, 0)  # the parent kills the group: the worker and anything it started
        child._die_with_parent(parent_pid)
        output.redirect_output(tmp, index)
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C is the parent's to handle
        if by_value:
            env, engine_bytes = pickle.loads(engine)
            os.environ.update(env)
            engine = pickle.loads(engine_bytes)
        import torch

        torch.set_num_threads(threads)
        code = _serve_requests(engine, conn)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


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


class _Pool:
    """One run: start the workers, hand out requests, watch the deadline, clean up."""

    def __init__(self, requests, engine, workers, policy, order, timeout, arrivals):
        self.requests, self.engine, self.n = requests, engine, workers
        self.policy, self.order, self.timeout, self.arrivals = policy, order, timeout, arrivals
        self.procs, self.conns = [], []
        self.alive = set(range(workers))
        self.busy: dict[int, int] = {}  # worker -> position of the request it runs
        self.attempts = [0] * len(requests)
        self.records: dict[int, Record] = {}
        self.deaths: list[str] = []
        # position -> queue: one shared queue (dynamic) or one per worker (static)
        if policy == "dynamic":
            self.queues = [deque(range(len(requests)))]
        else:
            self.queues = [deque(share) for share in static_shares(len(requests), workers, policy)]

    def run(self) -> Report:
        threads = getattr(self.engine, "threads", 1)
        method = rank_start.pick_start_method(threads, "gloo")
        self.tmp = tempfile.mkdtemp(prefix="tplab-serve-")
        try:
            self._start(method, threads)
            self.deadline = time.monotonic() + self.timeout
            self._wait_loaded()
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
        return Report(list(self.records.values()), self.n, self.policy, self.order)

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
                    self._raise_error(w, message)
                else:
                    loading.discard(w)
                    self._died(w)
            if loading and time.monotonic() >= self.deadline:
                self._timed_out({w: None for w in loading})
        self.t0 = time.perf_counter()

    def _serve(self):
        while len(self.records) < len(self.requests):
            now = time.perf_counter() - self.t0
            self._dispatch(now)
            until = min(self.deadline, time.monotonic() + self._next_arrival(now))
            for w in self._ready(self.alive, until):
                message = self._receive(w)
                if message is None:
                    self._died(w)
                elif message[0] == "done":
                    self._done(w, message)
                else:
                    self._raise_error(w, message)
            if time.monotonic() >= self.deadline and len(self.records) < len(self.requests):
                self._timed_out(dict(self.busy))

    def _dispatch(self, now):
        """Give every idle worker its next arrived request, if it has one."""
        for w in sorted(self.alive - set(self.busy)):
            position = self._next_for(w, now)
            if position is not None:
                self.attempts[position] += 1
                self.busy[w] = position
                self._hand_out(w, self.requests[position])

    def _hand_out(self, w, request):
        """Send one request to worker w (the one step a pool of another kind does otherwise)."""
        try:
            self.conns[w].send(request)
        except OSError:  # it died before we could hand it over: its exit is seen next
            pass

    def _queue(self, w) -> deque:
        return self.queues[0 if self.policy == "dynamic" else w]

    def _next_for(self, w, now):
        """The position this worker serves next among arrived requests, by `order`; None if
        its queue holds nothing that has arrived."""
        queue = self._queue(w)
        arrived = [p for p in queue if self.arrivals[p] <= now]
        if not arrived:
            return None
        if self.order == "sjf":
            pick = min(arrived, key=lambda p: (self.requests[p].max_new_tokens,
                                               self.arrivals[p], p))
        else:
            pick = min(arrived, key=lambda p: (self.arrivals[p], p))
        queue.remove(pick)
        return pick

    def _next_arrival(self, now) -> float:
        """Seconds until the next request arrives that an idle worker could take (inf: none)."""
        idle = self.alive - set(self.busy)
        waiting = [self.arrivals[p] for w in idle for p in self._queue(w)
                   if self.arrivals[p] > now]
        return max(0.0, min(waiting) - now) if waiting else math.inf

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

    def _done(self, w, message):
        _, request_id, started, finished, tokens = message
        position = self.busy.pop(w)
        assert self.requests[position].id == request_id, (w, position, request_id)
        self.records[position] = Record(request_id, w, self.arrivals[position],
                                        started - self.t0, finished - self.t0, tokens,
                                        self.attempts[position])

    def _died(self, w):
        """Hand the dead worker's request (and a static worker's share) to the survivors."""
        self.alive.discard(w)
        self.deaths.append(Failure.died(w, self.procs[w].exitcode).message.replace(
            f"rank {w}", f"worker {w}"))
        interrupted = [self.busy.pop(w)] if w in self.busy else []
        lost = list(interrupted)
        if self.policy != "dynamic":
            lost += list(self.queues[w])
            self.queues[w].clear()
        if not self.alive:
            unserved = sorted(self.requests[p].id for p in range(len(self.requests))
                              if p not in self.records)
            raise ServeError(f"all {self.n} workers died ({'; '.join(self.deaths)}); "
                             f"requests without a result: {unserved}", unserved=unserved)
        if self.policy == "dynamic":
            self.queues[0].extendleft(reversed(lost))  # first in line again
            return
        survivors = sorted(self.alive)
        for i, position in enumerate(lost):  # the interrupted request first, then the share
            queue = self.queues[survivors[i % len(survivors)]]
            if i == 0 and interrupted:
                queue.appendleft(position)
            else:
                queue.append(position)

    def _raise_error(self, w, message):
        _, request_id, text = message
        where = "loading its replica" if request_id is None else f"request {request_id}"
        last = text.strip().splitlines()[-1] if text.strip() else "an error"
        raise ServeError(f"worker {w} failed on {where}: {last}\n\nworker {w}'s traceback:\n"
                         f"{text}", worker=w, request=request_id, traceback=text)

    def _timed_out(self, stuck: dict):
        """Raise at the deadline, naming each busy worker's request and where it was."""
        live = {w: p for w, p in stuck.items() if self.procs[w].is_alive()}
        for w in live:
            try:
                os.kill(self.procs[w].pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass
        until = time.monotonic() + _DUMP_WAIT_S
        while live and time.monotonic() < until and not all(
                output.stack_dump(output.read_output(self.tmp, w)[1]) for w in live):
            time.sleep(0.05)
        time.sleep(0.1)
        pairs = [(w, None if p is None else self.requests[p].id) for w, p in sorted(live.items())]
        parts = []
        for w, rid in pairs:
            what = "still loading its replica" if rid is None else f"still running request {rid}"
            stack = output.stack_dump(output.read_output(self.tmp, w)[1])
            parts.append(f"worker {w} is {what}" + (f"; its stack:\n{stack}" if stack else ""))
        unserved = sorted(r.id for p, r in enumerate(self.requests) if p not in self.records)
        if not parts:  # nobody busy: the rest had not arrived, or their workers were gone
            parts = [f"no worker was busy; requests {unserved} were still waiting to arrive "
                     f"(arrivals after the deadline?)"]
        raise ServeError(f"serving did not finish within its {self.timeout:g} s deadline: "
                         + "\n".join(parts), stuck=pairs, unserved=unserved,
                         worker=pairs[0][0] if pairs else None,
                         request=pairs[0][1] if pairs else None)

    def _stop(self, method):
        """Tell idle workers to stop, then SIGKILL every worker's process group and reap."""
        for w in self.alive - set(self.busy):
            try:
                self.conns[w].send(None)
            except OSError:
                pass
        quit_by = time.monotonic() + 1.0
        for p in self.procs:
            p.join(timeout=max(0.0, quit_by - time.monotonic()))
        for p in self.procs:
            # an exited worker's pid may be someone else's by now (reaped by us or by the fork
            # server): only one still running is signalled by pid
            if p.pid is None:
                continue
            if p.exitcode is None:
                kills = (os.killpg, os.kill)
            else:  # exited: a forked worker's group may hold what it started (no pid reuse
                kills = (os.killpg,) if method == "fork" else ()  # while a group exists)
            for kill in kills:
                try:
                    kill(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        for p in self.procs:
            p.join(timeout=5)
        for conn in self.conns:
            conn.close()

"""Which worker serves which request, and when: the rules of a replica pool, without processes.

Why apart from the processes: the same rules run on multiprocessing workers (`pool.py`) and on
Ray actors (`ray_pool.py`), so "contiguous", "dynamic", "sjf", arrivals and retries mean
exactly the same on both; the only step that differs is how a request reaches a worker
(`Scheduler.hand_out`, which each pool defines).

* `policy="contiguous"`: static, the first ceil(n/w) requests (in the order given) to worker 0,
  the next to worker 1, ...; `"round-robin"`: static, request i to worker i mod w. A static
  worker serves only its share, even when another worker is idle.
* `policy="dynamic"`: one shared queue; a worker that finishes gets the next request at once.
* `order="fifo"` serves a queue in arrival order, `"sjf"` the shortest `max_new_tokens` first
  (among requests that have arrived; non-preemptive). For static policies the order applies
  within each worker's share (the shares do not change), so fifo vs sjf is the order alone.
* A worker lost mid-request has its request handed to another (`Record.attempts` counts the
  hand-outs); a result that was received is never served again; a static worker's remaining
  share is dealt round-robin to the survivors; when none survive, `ServeError` lists the
  requests left without a result.
"""
from __future__ import annotations

import math
from collections import deque

from tplab.checks.forbid import guard  # exercise 06.1's check hides the Scheduler, however held
from tplab.serve.records import Record, Report

__all__ = ["Scheduler", "ServeError", "POLICIES", "ORDERS", "static_shares", "validate",
           "deadline_missed"]

POLICIES = ("contiguous", "round-robin", "dynamic")
ORDERS = ("fifo", "sjf")


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


def validate(requests, engine, workers, policy, order, timeout, arrivals,
             load_timeout=None) -> None:
    """Refuse a run that cannot be served as asked, saying what to change."""
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
    if load_timeout is not None and not load_timeout > 0:
        raise ValueError(f"load_timeout must be a positive number of seconds (or None: the same "
                         f"as timeout), got {load_timeout!r}")
    if not (callable(getattr(engine, "load", None)) and callable(getattr(engine, "run", None))):
        raise TypeError(f"engine must have load() and run(request), got {type(engine).__name__}")
    if arrivals is not None and (len(arrivals) != len(requests) or min(arrivals) < 0):
        raise ValueError(f"arrivals must give one time >= 0 per request ({len(requests)}), "
                         f"got {len(arrivals)}")


def deadline_missed(timeout: float, load_timeout: float, stuck) -> str:
    """The first words of a deadline's error: loading or serving, and which limit (`stuck`:
    [(worker, request id, or None while loading)])."""
    if stuck and all(rid is None for _, rid in stuck):
        return f"the replicas did not load within {load_timeout:g} s (load_timeout): "
    return f"serving did not finish within its {timeout:g} s deadline: "


class Scheduler:
    """The state of one run: queues, who is busy with what, attempts, records, deaths.
    A pool subclasses it and defines `hand_out`; it calls `dispatch` whenever a worker may be
    idle, `done` for each result and `lose` for each worker gone."""

    def __init__(self, requests, workers, policy, order, arrivals=None):
        guard("tplab.serve.scheduling.Scheduler")
        self.requests, self.n, self.policy, self.order = list(requests), workers, policy, order
        self.arrivals = ([0.0] * len(self.requests) if arrivals is None
                         else [float(a) for a in arrivals])
        self.alive = set(range(workers))
        self.busy: dict[int, int] = {}  # worker -> position of the request it runs
        self.attempts = [0] * len(self.requests)
        self.records: dict[int, Record] = {}
        self.deaths: list[str] = []
        # position -> queue: one shared queue (dynamic) or one per worker (static)
        if policy == "dynamic":
            self.queues = [deque(range(len(self.requests)))]
        else:
            self.queues = [deque(s) for s in static_shares(len(self.requests), workers, policy)]

    def hand_out(self, w: int, request) -> None:
        """Start `request` on worker w (the one step each kind of pool does its own way)."""
        raise NotImplementedError

    def finished(self) -> bool:
        return len(self.records) == len(self.requests)

    def report(self) -> Report:
        return Report(list(self.records.values()), self.n, self.policy, self.order)

    def unserved(self) -> list:
        return sorted(r.id for p, r in enumerate(self.requests) if p not in self.records)

    def dispatch(self, now: float) -> None:
        """Give every idle worker its next arrived request, if it has one (`now`: seconds
        from t0)."""
        for w in sorted(self.alive - set(self.busy)):
            position = self.next_for(w, now)
            if position is not None:
                self.attempts[position] += 1
                self.busy[w] = position
                self.hand_out(w, self.requests[position])

    def queue(self, w) -> deque:
        return self.queues[0 if self.policy == "dynamic" else w]

    def next_for(self, w, now):
        """The position this worker serves next among arrived requests, by `order`; None if
        its queue holds nothing that has arrived."""
        guard("tplab.serve.scheduling.Scheduler")
        queue = self.queue(w)
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

    def next_arrival(self, now) -> float:
        """Seconds until the next request arrives that an idle worker could take (inf: none)."""
        idle = self.alive - set(self.busy)
        waiting = [self.arrivals[p] for w in idle for p in self.queue(w)
                   if self.arrivals[p] > now]
        return max(0.0, min(waiting) - now) if waiting else math.inf

    def done(self, w, request_id, started: float, finished: float, tokens) -> None:
        """Worker w's result (times in seconds from t0)."""
        position = self.busy.pop(w)
        assert self.requests[position].id == request_id, (w, position, request_id)
        self.records[position] = Record(request_id, w, self.arrivals[position], started,
                                        finished, list(tokens), self.attempts[position])

    def lose(self, w, why: str) -> None:
        """Worker w is gone (`why`, for the error if none are left): hand its request, and a
        static worker's share, to the survivors."""
        self.alive.discard(w)
        self.deaths.append(why)
        interrupted = [self.busy.pop(w)] if w in self.busy else []
        lost = list(interrupted)
        if self.policy != "dynamic":
            lost += list(self.queues[w])
            self.queues[w].clear()
        if not self.alive:
            unserved = self.unserved()
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

    def raise_error(self, w, request_id, text: str):
        """Worker w raised (`text`: its traceback) while loading (request_id None) or serving."""
        where = "loading its replica" if request_id is None else f"request {request_id}"
        last = text.strip().splitlines()[-1] if text.strip() else "an error"
        raise ServeError(f"worker {w} failed on {where}: {last}\n\nworker {w}'s traceback:\n"
                         f"{text}", worker=w, request=request_id, traceback=text)

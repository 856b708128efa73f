"""Checks of exercise 06.1 (solutions/06_task_parallelism.ipynb): the learner's schedule of a
serving pool — which worker serves which request, from when to when — exactly as
`tplab.serve.serve` schedules it, for every policy and order, with and without arrivals.

`reference_schedule` is the rule of `tplab.serve.pool` replayed in whole time units (request i
takes lengths[i] units on any worker): at each instant, the idle workers, lowest index first,
each take the next request of their queue that has arrived (FIFO: earliest arrival, then the
lowest position; SJF: shortest, then earliest arrival, then lowest position); a worker that
finishes at t and a request that arrives at t are both there at t. `check_schedules` compares
the learner's schedules with it on cases chosen where plausible slips differ (static dealt as
dynamic, FIFO by position instead of arrival, SJF choosing among requests not yet arrived, an
arrival at t not counted at t, contiguous blocks of floor(n/w) or numpy's array_split, idle
workers taken longest-idle or earliest-free first instead of lowest index), naming the slip.
`check_against_serve` runs `tplab.serve.serve` on `SleepEngine` workers and requires the
learner's prediction of who ran what, and when, to match the measured records. While the
learner's function runs, the answers it could hand over raise, however they are held: the
reference here and tplab.serve's own rule (`Scheduler`, which `serve` and `serve_ray` run);
both call `forbid.guard` first, so a copy kept in a dict or a subclass made earlier raises too.
"""
from __future__ import annotations

import math
import numbers
from collections import deque

from tplab.checks.forbid import forbidden, guard
from tplab.serve import Request, Scheduler, SleepEngine, serve, serve_ray, static_shares
from tplab.serve.workload import draw_lengths

__all__ = ["reference_schedule", "CASES", "check_schedules", "check_against_serve",
           "SERVE_CASE", "makespan"]

POLICIES, ORDERS = ("contiguous", "round-robin", "dynamic"), ("fifo", "sjf")
HEAVY = draw_lengths(11, seed=0, cap=24)  # heavy-tailed (lesson 06), 11: w does not divide n
# arrivals out of id order, one exactly at a worker's finish, two at the same time
ARRIVALS_LENGTHS = [4, 6, 1, 5, 2, 2, 3, 1, 7]
ARRIVALS = [0, 0, 3, 1, 4, 4, 6, 2, 9]
CASES = ([(HEAVY, w, policy, order, None) for w in (2, 3) for policy in POLICIES
          for order in ORDERS]
         + [(ARRIVALS_LENGTHS, w, policy, order, ARRIVALS) for w in (2, 3)
            for policy in POLICIES for order in ORDERS]
         # a short request arriving exactly when a worker finishes, a long one already waiting
         + [([4, 5, 6, 1, 2], 2, "dynamic", order, [0, 0, 0, 4, 5]) for order in ORDERS]
         + [([2, 9, 4], 4, "dynamic", "fifo", None), ([5], 1, "contiguous", "sjf", [2])]
         # 7 on 3: ceil(n/w) blocks are 3, 3, 1, numpy's array_split gives 3, 2, 2
         + [([5, 3, 4, 3, 6, 5, 5], 3, "contiguous", "sjf", None)]
         # at t = 3 worker 0 (free since 1) and worker 1 (free since 0) are both idle: the lower
         # index takes request 3, not the one idle longest nor the earliest free (list scheduling)
         + [([5, 1, 3, 1, 1], 2, "dynamic", "fifo", [8, 0, 6, 3, 6])])
# the run on real processes: each decision has a margin of 2 units or more between workers
SERVE_CASE = ([4, 1, 6, 4, 4, 4, 4, 3], 2, "dynamic", "sjf", None)
UNIT_S = 0.05   # seconds per unit of length in the run (SleepEngine's per-token sleep)

_NOT_YOURS = ("{} called tplab.checks.lesson06.reference_schedule, the answer the check compares "
              "with: simulate the pool yourself")
_NOT_POOL = ("{} used tplab.serve's {}, the pool's own dispatch rule, which the check compares "
             "with: simulate the pool yourself, on your own clock")


def reference_schedule(lengths, workers, policy="dynamic", order="fifo", arrivals=None):
    """[(worker, start, finish)] per request, in whole units, as tplab.serve.pool schedules."""
    guard("tplab.checks.lesson06.reference_schedule")  # hidden also when held in a dict
    n = len(lengths)
    arrivals = [0] * n if arrivals is None else list(arrivals)
    if policy == "dynamic":
        queues = [deque(range(n))]
    else:
        queues = [deque(share) for share in static_shares(n, workers, policy)]
    free_at, out, t = [0] * workers, [None] * n, 0
    while any(o is None for o in out):
        for w in range(workers):
            queue = queues[0 if policy == "dynamic" else w]
            arrived = [p for p in queue if arrivals[p] <= t]
            if free_at[w] > t or not arrived:
                continue
            if order == "sjf":
                pick = min(arrived, key=lambda p: (lengths[p], arrivals[p], p))
            else:
                pick = min(arrived, key=lambda p: (arrivals[p], p))
            queue.remove(pick)
            free_at[w] = t + lengths[pick]
            out[pick] = (w, t, free_at[w])
        later = [f for f in free_at if f > t] + [arrivals[p] for q in queues for p in q
                                                  if arrivals[p] > t]
        t = min(later) if later else t
    return out


def makespan(schedule, arrivals=None) -> float:
    """Last finish minus first submission."""
    guard("tplab.checks.lesson06.makespan")  # exercise 06.3's check hides it
    first = min(arrivals) if arrivals else 0
    return max(f for _, _, f in schedule) - first


def _as_schedule(got, n, workers, where):
    assert isinstance(got, (list, tuple)) and len(got) == n, (
        f"{where} returned {type(got).__name__}"
        + (f" of length {len(got)}" if isinstance(got, (list, tuple)) else "")
        + f"; return a list with one (worker, start, finish) per request, {n} here")
    out = []
    for i, item in enumerate(got):
        ok = (isinstance(item, (list, tuple)) and len(item) == 3
              and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in item))
        assert ok, (f"{where}: item {i} is {item!r}; each request's entry is a tuple "
                    f"(worker, start, finish) of numbers")
        w, s, f = item
        assert w == int(w) and 0 <= w < workers, (
            f"{where}: request {i} is given to worker {w!r}; workers are 0..{workers - 1}")
        out.append((int(w), s, f))
    return out


def _slip(want, got, lengths, workers, policy, order, arrivals) -> str:
    """The likely mistake behind a schedule that differs from the reference."""
    n, arr = len(lengths), arrivals or [0] * len(lengths)
    if any(f - s != lengths[i] for i, (_, s, f) in enumerate(got)):
        i = next(i for i, (_, s, f) in enumerate(got) if f - s != lengths[i])
        return (f"request {i} runs from {got[i][1]} to {got[i][2]} but takes {lengths[i]} "
                f"units: finish = start + length, nothing is preempted")
    early = [i for i, (_, s, _) in enumerate(got) if s < arr[i]]
    if early:
        return (f"request {early[0]} starts at {got[early[0]][1]}, before it arrives at "
                f"{arr[early[0]]}: a worker can only take a request that has arrived")
    if policy != "dynamic":
        shares = static_shares(n, workers, policy)
        if sorted(i for i in range(n) if got[i][0] != want[i][0]):
            floor = math.ceil(n / workers) != n // workers
            return (f"a static policy gives worker w exactly its share, {shares}"
                    + (" (contiguous: blocks of ceil(n/w), the last one shorter)"
                       if policy == "contiguous" and floor else "")
                    + "; it keeps it even when another worker is idle")
    elif [w for w, _, _ in got] == [i % workers for i in range(n)] != [w for w, _, _ in want]:
        return ("that is round-robin, a static deal: dynamic hands each request to the first "
                "worker that is free")
    for t in sorted({s for _, s, _ in want}):
        started_w = sorted((w, i) for i, (w, s, _) in enumerate(want) if s == t)
        started_g = sorted((w, i) for i, (w, s, _) in enumerate(got) if s == t)
        if started_w != started_g:
            waiting = sorted(i for i in range(n) if arr[i] <= t and want[i][1] >= t)
            rule = ("the shortest first, ties by arrival, then position" if order == "sjf"
                    else "the earliest arrival first, ties by position")
            return (f"at t = {t} the pool starts {_pairs(started_w)}, yours "
                    f"{_pairs(started_g) or 'nothing'}; requests arrived and waiting then: "
                    f"{waiting} (a request arriving at t, and a worker finishing at t, count at "
                    f"t). Idle workers, lowest index first, each take {rule}, among requests "
                    f"that have arrived")
    return "compare your schedule with the rule in the target"


def _pairs(started):
    return ", ".join(f"request {i} on worker {w}" for w, i in started)


def _key_only(cls):
    """Something `forbidden` hides under `cls`'s key (module + qualname) while swapping no name:
    a class swapped for a raising function would break a learner's `class Sim(Scheduler)` with a
    TypeError that says nothing; the class's own guard raises the check's message instead."""
    def key_only():
        raise AssertionError(f"{cls.__qualname__} is hidden")
    key_only.__module__, key_only.__qualname__ = cls.__module__, cls.__qualname__
    return key_only


def learner_schedules(fn, namespace, cases=CASES) -> list:
    """The learner's schedules for `cases`, with the reference switched off while they run."""
    name = getattr(fn, "__name__", "your function")
    answers = {reference_schedule: _NOT_YOURS.format(name),
               **{pool: _NOT_POOL.format(name, label) for pool, label in (
                   (_key_only(Scheduler), "Scheduler"), (serve, "serve"),
                   (serve_ray, "serve_ray"))}}
    with forbidden(namespace, answers):
        raw = [fn(list(lengths), workers, policy, order, None if a is None else list(a))
               for lengths, workers, policy, order, a in cases]
    return [_as_schedule(got, len(case[0]), case[1], _where(case)) for got, case in zip(raw, cases)]


def _where(case) -> str:
    lengths, workers, policy, order, arrivals = case
    return (f"simulate_pool({lengths}, {workers}, {policy!r}, {order!r}"
            + (f", arrivals={arrivals})" if arrivals else ")"))


def check_schedules(fn, namespace, cases=CASES) -> dict:
    """Every case's schedule equals the pool's rule exactly; {case index: makespan}."""
    found = learner_schedules(fn, namespace, cases)
    for case, got in zip(cases, found):
        want = reference_schedule(*case)
        if got != want:
            raise AssertionError(
                f"{_where(case)}: {_slip(want, got, *case)}.\n  expected (worker, start, finish) "
                f"per request: {want}\n  yours: {got}")
    return {k: makespan(got, case[4]) for k, (case, got) in enumerate(zip(cases, found))}


def check_against_serve(fn, namespace, attempts: int = 3):
    """Run tplab.serve on SleepEngine workers (SERVE_CASE, UNIT_S a unit) and require the learner's
    prediction: each request on the predicted worker, starting within 0.1 s + 10 % of the
    predicted time. (schedule, report) of the last run."""
    check_schedules(fn, namespace)  # exact first: a measurement cannot tell slips apart
    lengths, workers, policy, order, arrivals = SERVE_CASE
    predicted = learner_schedules(fn, namespace, [SERVE_CASE])[0]
    requests = [Request(i, f"request {i}", (1,), n) for i, n in enumerate(lengths)]
    problem = None
    for _ in range(attempts):  # a busy machine can spoil one run: again
        report = serve(requests, SleepEngine(UNIT_S), workers=workers, policy=policy,
                       order=order, timeout=30)
        problem = _serve_problem(predicted, report)
        if problem is None:
            return predicted, report
    raise AssertionError(problem + f" (in {attempts} runs: is the machine very busy?)")


def _serve_problem(predicted, report):
    for (w, s, _), rec in zip(predicted, report.records):
        if rec.worker != w:
            return (f"tplab.serve ran request {rec.id} on worker {rec.worker}, your schedule "
                    f"predicts worker {w}")
        if abs(rec.started - s * UNIT_S) > 0.1 + 0.1 * s * UNIT_S:
            return (f"tplab.serve started request {rec.id} at {rec.started:.3f} s, your schedule "
                    f"predicts {s} units = {s * UNIT_S:.3f} s")
    return None

"""Checks of exercise 05.2 (solutions/05_pipeline_parallelism.ipynb): 1F1B's action list for any
number of stages p and micro-batches m, against the reference order and on real ranks.

`check_orders` compares the learner's lists with `tplab.pp.one_f_one_b` over a grid with
m < p, m = 1 and p = 1, and at (p, m) drawn when it runs (`drawn_points`: m < p, m = p and
m > p for up to 16 stages), so that no table of lists for fixed points passes; meanwhile
tplab's schedules (and torch's Schedule1F1B, if imported) raise: they are the answer. It names
the first differing action and the likely slip (GPipe's order, a warm-up one too long or not
capped at m, a drain off by one). `check_runs` trains with the lists through
`tplab.pp.run_step` on real ranks, bounded by a short deadline; `simulate` replays lists in unit
time, to say where a deadlocked run waited and to draw the learner's schedule.
"""
from __future__ import annotations

import contextlib
import copy
import numbers
import os
import random
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tplab.checks.forbid import forbidden
from tplab.checks.lesson05 import bounded_launch
from tplab.pp import run_step
from tplab.pp.schedules import Action, gpipe, one_f_one_b, peak_inflight, schedule

__all__ = ["GRID", "drawn_points", "check_orders", "check_runs", "simulate", "as_pairs", "show"]

TIMEOUT = 5  # seconds per launch: these runs take well under one; a deadlock ends here

# ---- exercise 05.2: my_1f1b ------------------------------------------------------------------

GRID = [(p, m) for p in (1, 2, 3, 4, 5) for m in (1, 2, 3, 4, 5, 8)]
RUN_PS, RUN_MS, WIDTH, BATCH = (2, 3, 4), (1, 2, 3, 4, 6), 4, 12
_NOT_1F1B = ("my_1f1b called {}, which holds the answer the checks compare with: write the list "
             "yourself")


def drawn_points(n: int = 3, seed=None) -> list[tuple[int, int]]:
    """For n stage counts p drawn from 2..16, (p, m) with m < p, m = p and m > p (up to 64),
    drawn from `seed` (by default one nobody sees): 3·n points no fixed table covers."""
    rng = random.Random(os.urandom(8) if seed is None else seed)
    return [(p, m) for p in rng.sample(range(2, 17), n)
            for m in (rng.randint(1, p - 1), p, rng.randint(p + 1, 64))]


def answers_1f1b() -> dict:
    """tplab's 1F1B, and torch's where the notebook has imported it (importing it here would cost
    seconds on every check)."""
    answers = {one_f_one_b: _NOT_1F1B.format("tplab.pp.one_f_one_b"),
               schedule: _NOT_1F1B.format("tplab.pp.schedule")}
    torch_pp = sys.modules.get("torch.distributed.pipelining")
    if torch_pp is not None:
        answers[torch_pp.Schedule1F1B] = _NOT_1F1B.format("torch.distributed.pipelining's "
                                                          "Schedule1F1B")
    return answers


@contextlib.contextmanager
def torch_1f1b_closed():
    """While the block runs, torch's Schedule1F1B (if imported) cannot be built nor asked for its
    order, however the notebook holds it (a name swap misses a class kept in a dict or a list)."""
    torch_pp = sys.modules.get("torch.distributed.pipelining")
    cls = getattr(torch_pp, "Schedule1F1B", None)
    message = _NOT_1F1B.format("torch.distributed.pipelining's Schedule1F1B")

    def stand_in(*args, **kwargs):
        raise AssertionError(message)

    kept = {name: vars(cls)[name] for name in ("__init__", "_get_pipeline_order")
            if cls is not None and name in vars(cls)}
    for name in kept:
        setattr(cls, name, stand_in)
    try:
        yield
    finally:
        for name, method in kept.items():
            setattr(cls, name, method)


def as_pairs(actions, where: str) -> list[tuple[str, int]]:
    """[(kind, micro)] from a list of ("F", 0)-like pairs (tuples, lists or tplab.pp.Action);
    AssertionError if it is not."""
    assert isinstance(actions, (list, tuple)), (
        f"{where} returned {type(actions).__name__}; return a list like [('F', 0), ('B', 0)]")
    pairs = []
    for k, a in enumerate(actions):
        ok = (isinstance(a, (tuple, list)) and len(a) in (2, 3) and a[0] in ("F", "B")
              and isinstance(a[1], numbers.Integral) and not isinstance(a[1], bool)
              and (len(a) == 2 or a[2] == 0))
        assert ok, (f"{where}: item {k} is {a!r}; each item is a pair (kind, micro-batch) with "
                    f"kind 'F' or 'B', like ('F', 0), or tplab.pp.Action('F', 0)")
        pairs.append((a[0], int(a[1])))
    return pairs


def show(pairs) -> str:
    return " ".join(f"{k}{i}" for k, i in pairs)


def shape_problem(pairs, m: int, where: str) -> str | None:
    """What makes the list impossible to run: a micro-batch out of range, missing, twice, or a
    backward before its forward."""
    for kind, i in pairs:
        if not 0 <= i < m:
            fix = ("the warm-up is capped at m: min(p − rank − 1, m) forwards" if kind == "F" else
                   "the drain runs the backwards the steady state left, up to micro-batch m − 1")
            return (f"{where}: {kind}{i} names micro-batch {i}, but there are m = {m} "
                    f"(0..{m - 1}): {fix}; yours: {show(pairs)}")
    for i in range(m):
        for kind in "FB":
            n = pairs.count((kind, i))
            if n != 1:
                return (f"{where}: {kind}{i} appears {n} times, once is right: every micro-batch "
                        f"gets one forward and one backward (the drain runs the backwards the "
                        f"steady state left); yours: {show(pairs)}")
        if pairs.index(("B", i)) < pairs.index(("F", i)):
            return (f"{where}: B{i} comes before F{i}, but a backward needs its forward's "
                    f"activations (in the steady state: one forward, then one backward); yours: "
                    f"{show(pairs)}")
    return None


def order_problem(pairs, p: int, m: int, rank: int, where: str) -> str | None:
    want = [(a.kind, a.micro) for a in one_f_one_b(p, m, rank)]
    if pairs == want:
        return None
    k = next(k for k, (a, b) in enumerate(zip(pairs, want)) if a != b)
    peak, right = peak_inflight([Action(*a) for a in pairs]), min(p - rank, m)
    if pairs == [(a.kind, a.micro) for a in gpipe(p, m, rank)]:
        why = ("that is GPipe's order (every forward, then every backward), m in flight: 1F1B "
               "runs a backward as soon as it can")
    elif peak != right:
        why = (f"yours keeps the activations of up to {peak} micro-batch(es) at once, 1F1B "
               f"min(p − rank, m) = {right}: warm up with min(p − rank − 1, m) forwards (none on "
               f"the last rank), then alternate one forward and one backward, then drain")
    else:
        why = ("the warm-up is right; in the steady state each forward comes before the backward "
               "paired with it, and the drain runs the remaining backwards oldest first")
    return (f"{where}: action {k} is {show(pairs[k:k + 1])}, 1F1B runs {show(want[k:k + 1])} "
            f"there ({why}). 1F1B: {show(want)}; yours: {show(pairs)}")


def learner_lists(my_1f1b, points, namespace) -> dict:
    """{(p, m): [rank 0's pairs, ...]}, the learner's function run with the answer forbidden."""
    with forbidden(namespace, answers_1f1b()), torch_1f1b_closed():
        raw = {(p, m): [my_1f1b(p, m, r) for r in range(p)] for p, m in points}
    return {(p, m): [as_pairs(a, f"my_1f1b({p}, {m}, {r})") for r, a in enumerate(lists)]
            for (p, m), lists in raw.items()}


def check_orders(my_1f1b, namespace, points=None) -> None:
    """Every rank's list equals 1F1B's at every (p, m) of `points` (by default GRID and points
    drawn now); AssertionError naming the first slip."""
    points = GRID + drawn_points() if points is None else points
    for (p, m), lists in learner_lists(my_1f1b, points, namespace).items():
        for rank, pairs in enumerate(lists):
            where = f"my_1f1b({p}, {m}, {rank})"
            problem = shape_problem(pairs, m, where) or order_problem(pairs, p, m, rank, where)
            assert not problem, problem


def simulate(lists, tf: float = 1.0, tb: float = 2.0):
    """Replay per-rank lists of (kind, micro) on equal stages as run_step runs them (a forward
    waits for the previous rank's, a backward for the next rank's): ([(kind, micro, start,
    end)] per rank, {rank: the (kind, micro) it waits at for ever})."""
    p = len(lists)
    done, pos, clock, timeline = {}, [0] * p, [0.0] * p, [[] for _ in range(p)]
    moved = True
    while moved:
        moved = False
        for r in range(p):
            if pos[r] == len(lists[r]):
                continue
            kind, i = lists[r][pos[r]][:2]
            need = (kind, i, r - 1 if kind == "F" else r + 1)
            if 0 <= need[2] < p and need not in done:
                continue
            start = max(clock[r], done.get(need, 0.0))
            clock[r] = done[kind, i, r] = start + (tf if kind == "F" else tb)
            timeline[r].append((kind, i, start, clock[r]))
            pos[r], moved = pos[r] + 1, True
    return timeline, {r: tuple(lists[r][pos[r]][:2]) for r in range(p) if pos[r] < len(lists[r])}


def deadlock_hint(lists_by_m: dict) -> str:
    for m, lists in lists_by_m.items():
        _, stuck = simulate(lists)
        if stuck:
            waits = "; ".join(
                f"rank {r} waits to run {k}{i} for rank {r - 1 if k == 'F' else r + 1}'s "
                f"{'activation' if k == 'F' else 'gradient'} of micro-batch {i}"
                for r, (k, i) in stuck.items())
            return (f"Your lists deadlock at m = {m}: {waits}, which that rank sends only after "
                    f"its own wait ends. A rank must run ahead of the next one: warm up with "
                    f"p − rank − 1 forwards (none on the last rank).")
    return ("Replayed, your lists cannot deadlock: the machine may be very busy; run the check "
            "again.")


def _layers(p: int):
    torch.manual_seed(5)
    return [nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.Tanh()) for _ in range(p)]


def run_lists(lists_by_m: dict) -> dict:
    """On each rank: one training step per m with this rank's list through run_step; {m: (largest
    relative gradient error, loss error on the last rank else None, measured peak in flight)}."""
    rank, p = dist.get_rank(), dist.get_world_size()
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(BATCH, WIDTH, generator=g), torch.randn(BATCH, WIDTH, generator=g)
    out = {}
    for m, lists in lists_by_m.items():
        layers = _layers(p)
        whole = nn.Sequential(*copy.deepcopy(layers))
        loss = F.mse_loss(whole(x), y)
        loss.backward()
        step = run_step([layers[rank]], [Action(k, i) for k, i in lists[rank]], list(x.chunk(m)),
                        list(y.chunk(m)), F.mse_loss, recv_shape=(BATCH // m, WIDTH))
        err = max(float((a.grad - b.grad).abs().max() / b.grad.abs().max())
                  for a, b in zip(layers[rank].parameters(), whole[rank].parameters()))
        loss_err = abs(step.loss - loss.item()) / loss.item() if rank == p - 1 else None
        out[m] = (err, loss_err, step.peak_inflight)
    return out


def check_runs(my_1f1b, namespace) -> None:
    """The lists train like one process on 2-4 ranks, deadlock-free, holding min(p − rank, m)
    micro-batches at most; then, as a last word, equal 1F1B's on the grid and at drawn points."""
    for p in RUN_PS:
        lists = learner_lists(my_1f1b, [(p, m) for m in RUN_MS], namespace)
        for m in RUN_MS:
            for rank, pairs in enumerate(lists[p, m]):
                problem = shape_problem(pairs, m, f"my_1f1b({p}, {m}, {rank})")
                assert not problem, problem
        by_m = {m: lists[p, m] for m in RUN_MS}
        results = bounded_launch(run_lists, p, by_m, timeout=TIMEOUT, hint=deadlock_hint(by_m))
        for rank, per_m in enumerate(results):
            for m, (err, loss_err, peak) in per_m.items():
                where = f"p = {p}, m = {m}, rank {rank}, your list {show(lists[p, m][rank])}"
                assert err <= 1e-5 and (loss_err is None or loss_err <= 1e-5), (
                    f"{where}: the gradients (or loss) differ from one process's by {err:.2g} "
                    f"(relative); every micro-batch must get its forward and backward")
                assert peak == min(p - rank, m), (
                    f"{where}: {peak} micro-batches were in flight at the peak (measured by "
                    f"run_step), 1F1B holds min(p − rank, m) = {min(p - rank, m)}: warm up with "
                    f"min(p − rank − 1, m) forwards, then one forward and one backward in turn")
    check_orders(my_1f1b, namespace)

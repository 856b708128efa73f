"""Checks of exercise 05.3 (solutions/05_pipeline_parallelism.ipynb): the bubble, in both
conventions, and the peak number of micro-batches in flight, predicted for any (p, m, v).

`check_predictions` calls the learner's `predict` with tplab.pp's formulas and schedules made to
raise (they are the answer) at (p, m, v) points where the plausible wrong formulas differ, and at
a few drawn when it runs (`drawn_points`: no table of values for fixed points passes), checks
every value exactly (fractions compared as fractions, floats to 1e-12), and names the slip a
wrong value equals (the other convention, v left out, p for p − 1, a cap forgotten). Only then
is it compared with a measurement: `measure_bubbles` runs stages that *sleep* for their compute
time (`tplab.pp.workloads.TimedStage`), so two busy cores do not distort the timeline, and
`measured_problem` compares.
"""
from __future__ import annotations

import math
import numbers
import os
import random
import statistics
from fractions import Fraction

import torch
import torch.distributed as dist
import torch.nn.functional as F

from tplab.checks.forbid import forbidden
from tplab.pp import bubble, inflight_formula, interleaved_1f1b, run_step
from tplab.pp.schedules import gpipe, one_f_one_b, peak_inflight, schedule
from tplab.pp.timeline import bubble_measured, idle_fraction
from tplab.pp.workloads import TimedStage

__all__ = ["POINTS", "drawn_points", "check_predictions", "measure_bubbles", "measured_problem",
           "MEASURED_POINTS"]


# ---- exercise 05.3: predict ------------------------------------------------------------------

KEYS = ("total", "ideal", "inflight_first", "inflight_last")
POINTS = ([(name, p, m, 1) for name in ("gpipe", "1f1b") for p, m in
           ((1, 1), (1, 4), (2, 1), (2, 3), (3, 2), (4, 3), (4, 4), (4, 9), (5, 7), (8, 32))]
          + [("interleaved", p, m, v) for p, m, v in
             ((1, 3, 2), (2, 2, 2), (2, 6, 3), (3, 3, 2), (4, 4, 2), (4, 8, 2), (4, 12, 3))])
_NOT_PREDICT = ("predict called {}, which computes the answer the checks compare with: write the "
                "formulas yourself")
ANSWERS_PREDICT = {f: _NOT_PREDICT.format(f"tplab.pp.{f.__name__}") for f in (
    bubble, inflight_formula, peak_inflight, schedule, gpipe, one_f_one_b, interleaved_1f1b,
    bubble_measured)}


def drawn_points(n: int = 2, seed=None) -> list[tuple[str, int, int, int]]:
    """n points per schedule drawn from `seed` (by default one nobody sees): GPipe and 1F1B at
    p in 2..16, m in 1..64; interleaved at p in 2..8, v in 2..4, m a multiple of p up to 8·p."""
    rng = random.Random(os.urandom(8) if seed is None else seed)
    out = [(name, rng.randint(2, 16), rng.randint(1, 64), 1)
           for name in ("gpipe", "1f1b") for _ in range(n)]
    for _ in range(n):
        p = rng.randint(2, 8)
        out.append(("interleaved", p, p * rng.randint(1, 8), rng.randint(2, 4)))
    return out


def exact(name, p, m, v) -> dict:
    return {"total": Fraction(p - 1, v * m + p - 1), "ideal": Fraction(p - 1, v * m),
            "inflight_first": inflight_formula(name, p, m, 0, v),
            "inflight_last": inflight_formula(name, p, m, p - 1, v)}


def slips(key, p, m, v) -> list[tuple[str, object]]:
    """Plausible wrong formulas for `key`, each with its value at (p, m, v), likeliest first
    (those about v only where v > 1)."""
    if key in ("total", "ideal"):
        found = [("(p − 1)/(v·m), the other convention (over the ideal time)",
                  Fraction(p - 1, v * m)),
                 ("(p − 1)/(v·m + p − 1), the other convention (share of the step)",
                  Fraction(p - 1, v * m + p - 1)),
                 ("p/(v·m + p): p slots of fill, not p − 1", Fraction(p, v * m + p)),
                 ("p/(v·m): p slots of fill, not p − 1", Fraction(p, v * m))]
        by_v = [("(p − 1)/(m + p − 1): v left out", Fraction(p - 1, m + p - 1)),
                ("(p − 1)/m: v left out", Fraction(p - 1, m)),
                ("(p − 1)/(v·(m + p − 1)): v divides the fill too",
                 Fraction(p - 1, v * (m + p - 1)))]
        return by_v + found if v > 1 else found
    rank = 0 if key == "inflight_first" else p - 1
    warm = 2 * (p - rank - 1) + (v - 1) * p
    found = [("m, GPipe's", m), ("min(p − rank, m), 1F1B's", min(p - rank, m)),
             ("p, the same on every rank", p), ("p − rank, not capped at m", p - rank),
             ("min(p, m), the same on every rank", min(p, m)),
             ("min(p − rank − 1, m), the warm-up alone: the steady state adds one",
              min(p - rank - 1, m))]
    all_first = ("v·m, every forward first: classic Megatron-LM does that when m = p (its "
                 "all_warmup_microbatches); the convention here is torch's "
                 "ScheduleInterleaved1F1B, which keeps its warm-up at m = p too" if m == p else
                 "v·m, every pass of every micro-batch: every forward first, as GPipe")
    by_v = [(all_first, v * m),
            ("min(2(p − rank − 1) + (v − 1)·p, v·m), the warm-up alone: the steady "
             "state adds one", min(warm, v * m)),
            ("2(p − rank − 1) + (v − 1)·p + 1, not capped at v·m (or capped before the one "
             "is added)", warm + 1),
            ("min(2(p − rank − 1) + (v − 1)·p, v·m) + 1: the cap applied before the steady "
             "state's one is added", min(warm, v * m) + 1)]
    return by_v + found if v > 1 else found


RULES = {"total": "the share of the step (GPipe's convention) is (p − 1)/(v·m + p − 1)",
         "ideal": ("over the ideal compute time (Narayanan et al. 2021, arXiv:2104.04473) it is "
                   "(p − 1)/(v·m)"),
         "gpipe": "GPipe runs every forward before any backward: m in flight on every rank",
         "1f1b": ("1F1B: rank r holds min(p − r, m) (a warm-up of p − r − 1 forwards, plus the "
                  "steady state's one, never more than the m there are)"),
         "interleaved": ("interleaved 1F1B counts (micro-batch, chunk) pairs: rank r holds "
                         "min(2(p − r − 1) + (v − 1)·p + 1, v·m): the warm-up of torch's "
                         "ScheduleInterleaved1F1B plus one, m = p included")}


def same(got, want) -> bool:
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        return False
    if isinstance(want, int) or isinstance(got, numbers.Rational):
        return got == want
    return math.isclose(float(got), float(want), rel_tol=1e-12, abs_tol=1e-15)


def check_predictions(predict, namespace, points=None) -> None:
    """predict exactly right at every point of `points` (by default POINTS and points drawn now);
    AssertionError naming the slip."""
    points = POINTS + drawn_points() if points is None else points
    with forbidden(namespace, ANSWERS_PREDICT):
        got = {point: predict(*point) for point in points}
    for (name, p, m, v), value in got.items():
        call = f"predict({name!r}, p={p}, m={m}, v={v})"
        assert isinstance(value, dict) and set(KEYS) <= set(value), (
            f"{call} should return a dict with keys {', '.join(KEYS)}; came {value!r:.120}")
        for key, want in exact(name, p, m, v).items():
            if same(value[key], want):
                continue
            slip = next((label for label, wrong in slips(key, p, m, v)
                         if wrong != want and same(value[key], wrong)), None)
            shown = (f"{want} = {float(want):.6g}" if isinstance(want, Fraction)
                     and want.denominator > 1 else f"{want}")
            which = {"inflight_first": " (rank 0)", "inflight_last": f" (rank {p - 1})"}
            rule = RULES.get(key, RULES[name]) + (
                " (v = 1 for GPipe and 1F1B)" if key in ("total", "ideal") else "")
            exactly = ("; it is compared exactly (to 1e-12): return the exact value, e.g. a "
                       "fractions.Fraction" if not slip and isinstance(want, Fraction)
                       and same(value[key], value[key]) and abs(value[key] - want) < 0.01
                       else "")
            raise AssertionError(
                f"{call}[{key!r}]{which.get(key, '')} is {value[key]!r}, expected {shown}"
                + (f" (yours equals {slip})" if slip else "") + f": {rule}{exactly}")


MEASURED_POINTS = [("gpipe", 2, 1), ("1f1b", 4, 1), ("interleaved", 2, 2)]   # (name, m, v)


def measure_bubbles(points, tf: float = 0.03, tb: float = 0.06, reps: int = 1) -> list:
    """On each rank: per (name, m, v), the measured bubble (share of the step, median of reps)
    and this rank's measured peak in flight."""
    rank, p = dist.get_rank(), dist.get_world_size()
    out = []
    for name, m, v in points:
        chunks, idle, peak = [TimedStage(2, tf, tb) for _ in range(v)], [], 0
        for _ in range(reps):
            step = run_step(chunks, schedule(name, p, m, rank, v), [torch.ones(2, 2)] * m,
                            [torch.zeros(2, 2)] * m, F.mse_loss, recv_shape=(2, 2))
            events = [None] * p
            dist.all_gather_object(events, step.events)
            idle.append(idle_fraction(events))
            peak = step.peak_inflight
        out.append((statistics.median(idle), peak))
    return out


def measured_problem(predict, namespace, per_rank, points=MEASURED_POINTS, p=2) -> str | None:
    """How the predictions miss the measured bubble or peaks, or None. Messages and waking a
    process only ever add idle time, so the measured bubble may exceed the closed form by up to
    0.10 (on a busy machine) but fall short of it by 0.05 at most."""
    for k, (name, m, v) in enumerate(points):
        with forbidden(namespace, ANSWERS_PREDICT):
            want = predict(name, p, m, v)
        measured = per_rank[0][k][0]
        as_total = want["ideal"] / (1 + want["ideal"])      # the same bubble, other convention
        for label, value in (("total", want["total"]), ("ideal, as a share", as_total)):
            if not -0.05 <= measured - value <= 0.10:
                return (f"{name}, p = {p}, m = {m}, v = {v}: predicted bubble ({label}) "
                        f"{float(value):.3f}, measured {measured:.3f} (share of the step)")
        peaks = (per_rank[0][k][1], per_rank[-1][k][1])
        if peaks != (want["inflight_first"], want["inflight_last"]):
            return (f"{name}, p = {p}, m = {m}, v = {v}: predicted in flight "
                    f"{want['inflight_first']} and {want['inflight_last']}, run_step measured "
                    f"{peaks[0]} on rank 0 and {peaks[1]} on the last rank")
    return None

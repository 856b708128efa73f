"""Checks of exercises 01 (solutions/01_collectives.ipynb): a ring all-reduce from send/recv,
and the α–β model's formulas, exactly and against gloo's measured all-reduce.

`ring_run` runs on every launched rank with the learner's `my_ring_all_reduce` passed in;
`ring_problem` names the first thing wrong in what the ranks returned (a collective used, a
wrong element and the chunk it sits in, the count of messages or bytes). `check_formulas`
compares the learner's `predict_time` and `latency_bound_below` with `tplab.comm.cost` at
synthetic points, with `tplab.comm.cost`'s formulas and lesson01_scale's references hidden
meanwhile (`tplab.checks.forbid`, under every name: one imported before the check too), so
that calling them is no answer;
`time_gloo` and `prediction_problem` compare predictions with measured times.
"""
from __future__ import annotations

import math
import statistics

import torch
import torch.distributed as dist

from tplab import comm
from tplab.checks.forbid import forbidden
from tplab.comm import cost
from tplab.timing import median, time_calls

__all__ = ["SETUP", "ring_run", "ring_problem", "check_formulas", "time_gloo",
           "prediction_problem"]


# ---- exercise 01.1: my_ring_all_reduce --------------------------------------------------------

SETUP = ("n", "rank", "right", "left", "flat", "chunks")   # the set-up lines of the exercise cell


def ring_run(my_ring_all_reduce, lengths):
    """On every rank: the learner's ring for each length and dtype: how its result compares with
    dist.all_reduce's, and the communication it made."""
    rank = dist.get_rank()
    out = []
    for numel in lengths:
        for dtype in (torch.float32, torch.int64):
            x = ((torch.arange(numel) * 7 + rank * 13) % 101 - 50).to(dtype)   # exact in any order
            expected = x.clone()
            dist.all_reduce(expected)
            got = x.clone()
            with comm.trace() as t:
                try:
                    returned = my_ring_all_reduce(got)
                except NameError as e:                  # a set-up line of the exercise cell deleted
                    if e.name not in SETUP:
                        raise
                    return [{"missing": e.name}]
            wrong = (got != expected).nonzero().flatten().tolist()
            returned_sum = (isinstance(returned, torch.Tensor)
                            and returned.shape == expected.shape
                            and torch.equal(returned, expected))
            out.append({"numel": numel, "dtype": dtype, "calls": t.summary(), "wrong": wrong[:1],
                        "got": got[wrong[:1]].tolist(), "expected": expected[wrong[:1]].tolist(),
                        "unchanged": torch.equal(got, x), "returned_sum": returned_sum})
    return out


def _missing_setup(runs) -> str | None:
    for rank, run in enumerate(runs):
        if "missing" in run[0]:
            return (f"rank {rank} of {len(runs)}: my_ring_all_reduce uses {run[0]['missing']!r}, "
                    f"which is no longer defined: keep the set-up lines at the top of the "
                    f"exercise cell ({', '.join(SETUP)}) and the final `return tensor`, and "
                    f"replace only the two `raise NotImplementedError(...)` lines")
    return None


def _rank_problem(where: str, run: dict, n: int, sizes: list[int], itemsize: int,
                  N: int) -> str | None:
    """What is wrong with one rank's result for one case, or None."""
    calls = run["calls"]
    others = sorted(set(calls) - {"send", "isend", "recv", "irecv"})
    if others:
        return f"{where}: you called {others}; use exchange (send/recv) only, no collective"
    if run["wrong"]:
        i = run["wrong"][0]
        chunk = next(c for c in range(n) if i < sum(sizes[:c + 1]))
        if run["unchanged"] and run["returned_sum"]:
            return (f"{where}: your function returned the sum but left its argument unchanged; "
                    f"write the sum into `tensor` itself (the chunks are views of it)")
        return (f"{where}: element {i} (in chunk {chunk}) is {run['got'][0]}, dist.all_reduce "
                f"gives {run['expected'][0]}; check which chunk each step sends and receives, and "
                f"that phase 2 overwrites (phase 1 adds)")
    sends = sum(calls.get(op, {}).get("calls", 0) for op in ("send", "isend"))
    recvs = sum(calls.get(op, {}).get("calls", 0) for op in ("recv", "irecv"))
    sent = sum(calls.get(op, {}).get("bytes", 0) for op in ("send", "isend"))
    if min(sizes) > 0 and (sends, recvs) != (2 * (n - 1), 2 * (n - 1)):
        return (f"{where}: {sends} sends and {recvs} receives, expected 2(n-1) = {2 * (n - 1)} "
                f"of each (n-1 steps per phase, one chunk per step)")
    low, high = 2 * (n - 1) * min(sizes) * itemsize, 2 * (n - 1) * max(sizes) * itemsize
    if not low <= sent <= high:
        return (f"{where}: sent {sent} B, expected 2(n-1)/n·N = {2 * (n - 1) * N / n:.0f} B "
                f"(between {low} and {high} B: one chunk of N/n bytes per step)")
    return None


def ring_problem(n: int, runs: list) -> str | None:
    """The first thing wrong in `runs`, the results of `ring_run` on n ranks, or None."""
    missing = _missing_setup(runs)
    if missing:
        return missing
    for case in range(len(runs[0])):
        per_rank = [r[case] for r in runs]
        numel, dtype = per_rank[0]["numel"], per_rank[0]["dtype"]
        N = numel * dtype.itemsize
        sizes = [len(c) for c in torch.tensor_split(torch.empty(numel), n)]
        what = f"length {numel}, {str(dtype).removeprefix('torch.')}"
        for rank, run in enumerate(per_rank):
            problem = _rank_problem(f"rank {rank} of {n}, {what}", run, n, sizes,
                                    dtype.itemsize, N)
            if problem:
                return problem
        sent_total = sum(run["calls"].get(op, {}).get("bytes", 0)
                         for run in per_rank for op in ("send", "isend"))
        if sent_total != 2 * (n - 1) * N:
            return (f"{n} ranks, {what}: {sent_total} B sent over all ranks, expected "
                    f"2(n-1)·N = {2 * (n - 1) * N} B (every chunk travels n-1 times in each phase)")
    return None


# ---- exercise 01.2: predict_time and latency_bound_below --------------------------------------

REFERENCE = {"all_reduce": cost.ring_all_reduce_time, "all_gather": cost.all_gather_time,
             "reduce_scatter": cost.reduce_scatter_time}
FORMULA = {"all_reduce": "2(n-1)·alpha + 2(n-1)/n·N·beta",
           "all_gather": "(n-1)·alpha + (n-1)/n·N·beta, N the output per rank",
           "reduce_scatter": "(n-1)·alpha + (n-1)/n·N·beta, N the input per rank"}
# alpha alone, beta alone (each term by itself), then both, at n and N where plausible wrong
# formulas differ: n vs n-1, n·alpha vs 2(n-1)·alpha, (n-1)/n vs 2(n-1)/n, N as input or output
MACHINES = [(1.0, 0.0), (0.0, 1.0), (20e-6, 1e-9), (5e-6, 1 / 450e9), (1e-3, 1 / 25e9)]
TERM = {(1.0, 0.0): " (alpha=1, beta=0: the latency term alone)",
        (0.0, 1.0): " (alpha=0, beta=1: the bandwidth term alone)"}
_COST_NAMES = ["point_to_point_time", "ring_all_reduce_time", "all_gather_time",
               "reduce_scatter_time", "crossover_bytes", "fit_alpha_beta"]


USED = ("predict_time or latency_bound_below called {ref}, one of the formulas the check "
        "compares with: write the formulas yourself")


def _answers() -> dict:
    """{reference: message}: tplab.comm.cost's formulas and lesson 01.3's references
    (`tplab.checks.lesson01_scale`), which `check_formulas` hides while the learner's functions
    run, under every name (one imported before the check included: `tplab.checks.forbid`)."""
    from tplab.checks import lesson01_scale as scale

    refs = {getattr(cost, name): f"tplab.comm.cost.{name}" for name in _COST_NAMES}
    refs.update({fn: f"tplab.checks.lesson01_scale.{fn.__name__}"
                 for fn in (scale.flat_ring, scale._half, scale.hierarchical)})
    return {fn: USED.format(ref=ref) for fn, ref in refs.items()}


def check_formulas(predict_time, latency_bound_below) -> None:
    """predict_time and latency_bound_below, exactly, at synthetic points: raises AssertionError
    if wrong."""
    points = [(name, N, n, alpha, beta) for alpha, beta in MACHINES for name in REFERENCE
              for n in (1, 2, 3, 4, 8, 64) for N in (0, 4, 2304, 1 << 20, 3 * 10**9)]
    crossings = [(n, alpha, beta) for alpha, beta in MACHINES if beta > 0 for n in (2, 3, 4, 8)]
    with forbidden(getattr(predict_time, "__globals__", {}), _answers()):
        predicted = [predict_time(*point) for point in points]
        bounds = [latency_bound_below(*c) for c in crossings]
        try:
            predict_time("all_to_everyone", 1024, 2, 1e-6, 1e-9)
            raised = False
        except ValueError:
            raised = True
    for (name, N, n, alpha, beta), got in zip(points, predicted):
        want = REFERENCE[name](N, n, alpha, beta)
        assert isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-9,
                                                              abs_tol=1e-15), (
            f"predict_time({name!r}, nbytes={N}, n={n}, alpha={alpha}, beta={beta}) is {got!r}, "
            f"expected {want!r}{TERM.get((alpha, beta), '')}: {name} takes {FORMULA[name]}")
    assert raised, "predict_time should raise ValueError for an unknown collective"
    for (n, alpha, beta), got in zip(crossings, bounds):
        want = n * cost.crossover_bytes(alpha, beta)
        assert isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-9,
                                                              abs_tol=1e-9), (
            f"latency_bound_below({n}, {alpha}, {beta}) is {got!r}, expected {want!r}: solve "
            f"2(n-1)·alpha = 2(n-1)/n·N·beta for N (N is the whole tensor, n messages of N/n "
            f"bytes)")


def time_gloo(sizes, iters: dict) -> dict:
    """On every rank: {bytes: median seconds of one gloo all-reduce}. The sizes are interleaved
    call by call, so that noise from elsewhere on the machine hits them all alike."""
    times = {s: [] for s in sizes}
    x = {s: torch.zeros(s // 4) for s in sizes}
    for s in sizes:
        dist.all_reduce(x[s])                       # warm-up
    for round_ in range(max(iters.values())):
        for s in sizes:
            if round_ < iters[s]:
                times[s] += time_calls(lambda: dist.all_reduce(x[s]), 1, warmup=0)
    return {s: median(t) for s, t in times.items()}


def prediction_problem(predict_time, measured: dict, alpha: float, beta: float,
                       test_sizes) -> str | None:
    """How predict_time misses the measured times at the sizes not used for the fit, or None."""
    ratios = []
    for s in test_sizes:
        predicted = predict_time("all_reduce", s, 2, alpha, beta)
        ratios.append(predicted / measured[s])
        if not 1 / 10 <= ratios[-1] <= 10:
            return (f"all-reduce of {s} B on 2 ranks: predicted {predicted * 1e6:.0f} µs, "
                    f"measured {measured[s] * 1e6:.0f} µs: more than 10x apart")
    typical = math.exp(statistics.mean(math.log(r) for r in ratios))   # geometric mean
    if not 1 / 3 <= typical <= 3:
        return f"predictions are typically {typical:.2f}x the measured times (want within 3x)"
    return None

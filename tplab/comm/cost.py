"""What communication costs: the α–β (latency–bandwidth) model of collectives.

Every message costs a fixed start-up time α (seconds: software overhead, a network
round trip, a kernel launch) plus β seconds per byte (β = 1 / bandwidth). A collective
is a known number of messages of known sizes, so its time is a formula in α and β.
The cost model is that of Thakur, Rabenseifner and Gropp, "Optimization of Collective
Communication Operations in MPICH", IJHPCA 19(1), 2005; the formulas are those of the ring
algorithms (Patarasuk and Yuan, JPDC 2009), one of those NCCL and gloo choose from (NCCL
picks among ring, tree, CollNet and NVLS by size and topology). n ranks; N bytes per rank
(all-gather: N is the gathered output); the reduction's γ per byte is left out (lesson 01):

    ring all-reduce            2(n-1)·α + 2·(n-1)/n·N·β
    all-gather, reduce-scatter  (n-1)·α +   (n-1)/n·N·β

Lesson 01 fits α and β to this machine's measurements with `fit_alpha_beta` and uses
the fit to predict; later lessons use the same functions to price a parallel plan.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from tplab.checks.forbid import guard  # exercise 01.2's check hides these, even reloaded

__all__ = ["point_to_point_time", "ring_all_reduce_time", "all_gather_time", "reduce_scatter_time",
           "crossover_bytes", "fit_alpha_beta"]


def _check(nbytes: float, n: int) -> None:
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (ranks) must be an integer >= 1, got {n!r}")


def point_to_point_time(nbytes: float, n: int, alpha: float, beta: float) -> float:
    """One message of `nbytes` from one rank to another: α + N·β (`n` is ignored; it is
    there so every model here has the signature `(nbytes, n, alpha, beta)`)."""
    guard("tplab.comm.cost.point_to_point_time")
    _check(nbytes, n)
    return alpha + nbytes * beta


def ring_all_reduce_time(nbytes: float, n: int, alpha: float, beta: float) -> float:
    """Ring all-reduce of `nbytes` per rank over `n` ranks: 2(n-1)·α + 2·(n-1)/n·N·β.

    A reduce-scatter then an all-gather, each n-1 steps of one message of N/n bytes per
    rank (Thakur, Rabenseifner & Gropp 2005, section 4). One rank: nothing to do, 0 s.
    """
    guard("tplab.comm.cost.ring_all_reduce_time")
    _check(nbytes, n)
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes * beta


def all_gather_time(nbytes: float, n: int, alpha: float, beta: float) -> float:
    """Ring all-gather whose *result* is `nbytes` per rank: (n-1)·α + (n-1)/n·N·β.

    Each rank starts with N/n bytes and, in n-1 steps, receives the other ranks' pieces
    (Thakur, Rabenseifner & Gropp 2005, section 3).
    """
    guard("tplab.comm.cost.all_gather_time")
    _check(nbytes, n)
    return (n - 1) * alpha + (n - 1) / n * nbytes * beta


def reduce_scatter_time(nbytes: float, n: int, alpha: float, beta: float) -> float:
    """Ring reduce-scatter of an `nbytes` input per rank: (n-1)·α + (n-1)/n·N·β.

    The mirror image of all-gather: n-1 steps of N/n bytes, each ending in an addition
    (whose compute time the model leaves out) (Thakur, Rabenseifner & Gropp 2005), so the
    same time as an all-gather of the same size.
    """
    guard("tplab.comm.cost.reduce_scatter_time")
    return all_gather_time(nbytes, n, alpha, beta)


def crossover_bytes(alpha: float, beta: float) -> float:
    """N* = α/β: the message size whose transfer time N·β equals its start-up time α.

    Below N* a message is latency-bound (α dominates, and sending half as many bytes saves
    almost nothing); above it, bandwidth-bound. A ring all-reduce sends messages of N/n
    bytes, so for the whole tensor the crossover is n·N*.
    """
    guard("tplab.comm.cost.crossover_bytes")
    if alpha < 0 or beta <= 0:
        raise ValueError(f"need alpha >= 0 and beta > 0, got alpha={alpha!r}, beta={beta!r}")
    return alpha / beta


Model = Callable[[float, int, float, float], float]


def fit_alpha_beta(sizes_bytes: Sequence[float], times_s: Sequence[float],
                   model: Model = point_to_point_time, n: int = 2,
                   relative: bool = True) -> tuple[float, float]:
    """Least-squares α (seconds) and β (seconds per byte) from measured times.

    `model(nbytes, n, alpha, beta)` is the formula the times are meant to follow, e.g.
    `ring_all_reduce_time` with `n` ranks; every model here is linear in α and β,
    T = a(N)·α + b(N)·β, and the coefficients are read off the model itself as
    a = model(N, n, 1, 0) and b = model(N, n, 0, 1).

    relative=True (the default) minimises the squared *relative* error Σ((T - t)/t)², the
    distance a log-log plot shows: measurements spanning 4 B to 64 MiB differ by 10^3 in
    time, and a plain fit would let the largest sizes decide α alone. relative=False
    minimises Σ(T - t)². Neither α nor β can be negative; if the unconstrained optimum
    has one below zero, it is set to 0 and the other refitted alone.
    Returns (alpha, beta); data that follow the model exactly give them back exactly
    (up to rounding).
    """
    guard("tplab.comm.cost.fit_alpha_beta")
    sizes, times = [float(s) for s in sizes_bytes], [float(t) for t in times_s]
    if len(sizes) != len(times):
        raise ValueError(f"{len(sizes)} sizes but {len(times)} times")
    if len(sizes) < 2:
        raise ValueError("need at least two measurements to fit two parameters")
    if any(t <= 0 for t in times) and relative:
        raise ValueError("times must be positive for a relative fit")
    rows = [(model(s, n, 1.0, 0.0), model(s, n, 0.0, 1.0)) for s in sizes]
    weights = [1.0 / t if relative else 1.0 for t in times]
    # weighted normal equations: minimise Σ w²(a·α + b·β - t)²
    saa = sum((w * a) ** 2 for (a, _), w in zip(rows, weights))
    sbb = sum((w * b) ** 2 for (_, b), w in zip(rows, weights))
    sab = sum(w * w * a * b for (a, b), w in zip(rows, weights))
    sat = sum(w * w * a * t for (a, _), t, w in zip(rows, times, weights))
    sbt = sum(w * w * b * t for (_, b), t, w in zip(rows, times, weights))
    det = saa * sbb - sab * sab
    if det <= 1e-12 * saa * sbb or not math.isfinite(det):
        raise ValueError("the sizes do not separate α from β (use at least two different sizes)")
    alpha = (sat * sbb - sbt * sab) / det
    beta = (saa * sbt - sab * sat) / det
    if alpha < 0:
        alpha, beta = 0.0, max(sbt / sbb, 0.0)
    elif beta < 0:
        alpha, beta = max(sat / saa, 0.0), 0.0
    return alpha, beta

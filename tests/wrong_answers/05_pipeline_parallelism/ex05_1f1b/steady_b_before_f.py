# wrong order in the steady state: B before F (warm-up p - rank - 1), so the last rank's first backward comes before any forward
def my_1f1b(p, m, rank):
    warmup = min(p - rank - 1, m)
    actions = [("F", i) for i in range(warmup)]
    for i in range(m - warmup):
        actions += [("B", i), ("F", warmup + i)]
    return actions + [("B", i) for i in range(m - warmup, m)]

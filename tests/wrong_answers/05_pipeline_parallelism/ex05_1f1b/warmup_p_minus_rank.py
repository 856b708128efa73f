# off by one: a warm-up of p - rank forwards, then F-then-B: one micro-batch too many in flight on every rank
def my_1f1b(p, m, rank):
    warmup = min(p - rank, m)
    actions = [("F", i) for i in range(warmup)]
    for i in range(m - warmup):
        actions += [("F", warmup + i), ("B", i)]
    return actions + [("B", i) for i in range(m - warmup, m)]

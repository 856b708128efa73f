# deadlock: the warm-up mirrored (rank forwards, so the last rank runs ahead): rank 0 waits for a gradient rank 1 sends only after rank 0's next forward; must end at the deadline
def my_1f1b(p, m, rank):
    warmup = min(rank, m)
    actions = [("F", i) for i in range(warmup)]
    for i in range(m - warmup):
        actions += [("F", warmup + i), ("B", i)]
    return actions + [("B", i) for i in range(m - warmup, m)]

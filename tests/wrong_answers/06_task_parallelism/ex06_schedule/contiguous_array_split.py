# contiguous shares from numpy's array_split (balanced blocks, the larger ones first) instead of ceil(n/w) blocks
import numpy as np


def simulate_pool(lengths, workers, policy="dynamic", order="fifo", arrivals=None):
    # request i takes lengths[i] units; return [(worker, start, finish)] per request
    n = len(lengths)
    arrivals = arrivals or [0] * n
    if policy == "dynamic":
        queues = [list(range(n))]
    elif policy == "contiguous":
        queues = [[int(i) for i in block] for block in np.array_split(np.arange(n), workers)]
    else:
        queues = [list(range(w, n, workers)) for w in range(workers)]
    if order == "sjf":
        key = lambda p: (lengths[p], arrivals[p], p)     # noqa: E731
    else:
        key = lambda p: (arrivals[p], p)                 # noqa: E731
    free_at, out, t = [0] * workers, [None] * n, 0
    while None in out:
        for w in range(workers):
            queue = queues[0 if policy == "dynamic" else w]
            arrived = [p for p in queue if arrivals[p] <= t]
            if free_at[w] <= t and arrived:
                pick = min(arrived, key=key)
                queue.remove(pick)
                free_at[w] = t + lengths[pick]
                out[pick] = (w, t, free_at[w])
        t = min([f for f in free_at if f > t]
                + [arrivals[p] for q in queues for p in q if arrivals[p] > t], default=t)
    return out

# list scheduling: each request in queue order to the worker free earliest (ties: lowest index), start = max(free, arrival)
import math


def simulate_pool(lengths, workers, policy="dynamic", order="fifo", arrivals=None):
    # request i takes lengths[i] units; return [(worker, start, finish)] per request
    n = len(lengths)
    arrivals = arrivals or [0] * n
    if policy == "dynamic":
        queues = [list(range(n))]
    elif policy == "contiguous":
        size = math.ceil(n / workers)
        queues = [list(range(w * size, min(n, (w + 1) * size))) for w in range(workers)]
    else:
        queues = [list(range(w, n, workers)) for w in range(workers)]
    free_at, out = [0] * workers, [None] * n
    while None in out:
        # the worker that is free first asks for work
        cands = [w for w in range(workers) if queues[0 if policy == "dynamic" else w]]
        w = min(cands, key=lambda w: (free_at[w], w))
        queue = queues[0 if policy == "dynamic" else w]
        t = max(free_at[w], min(arrivals[p] for p in queue))
        arrived = [p for p in queue if arrivals[p] <= t]
        if order == "sjf":
            pick = min(arrived, key=lambda p: (lengths[p], arrivals[p], p))
        else:
            pick = min(arrived, key=lambda p: (arrivals[p], p))
        queue.remove(pick)
        free_at[w] = t + lengths[pick]
        out[pick] = (w, t, free_at[w])
    return out

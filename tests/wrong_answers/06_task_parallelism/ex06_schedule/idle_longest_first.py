# idle workers take requests in the order they became free (longest idle first), not lowest index first
import math


def simulate_pool(lengths, workers, policy="dynamic", order="fifo", arrivals=None):
    n = len(lengths)
    arrivals = arrivals or [0] * n
    if policy == "dynamic":
        queues = [list(range(n))]
    elif policy == "contiguous":
        size = math.ceil(n / workers)
        queues = [list(range(w * size, min(n, (w + 1) * size))) for w in range(workers)]
    else:
        queues = [list(range(w, n, workers)) for w in range(workers)]
    key = (lambda p: (lengths[p], arrivals[p], p)) if order == "sjf" else (lambda p: (arrivals[p], p))
    free_at, out, t = [0] * workers, [None] * n, 0
    while None in out:
        for w in sorted(range(workers), key=lambda w: (free_at[w], w)):
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

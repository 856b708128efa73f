# off-by-one at a threshold: a request arriving exactly at t is not counted as arrived at t (< instead of <=); with nothing arrived the worker waits for the next one
import math


def simulate_pool(lengths, workers, policy="dynamic", order="fifo", arrivals=None):
    # request i takes lengths[i] units; return [(worker, start, finish)] per request
    n = len(lengths)
    arrivals = arrivals or [0] * n
    if policy == "dynamic":
        queues = [list(range(n))]                        # one shared queue
    elif policy == "contiguous":
        size = math.ceil(n / workers)
        queues = [list(range(w * size, min(n, (w + 1) * size))) for w in range(workers)]
    else:                                                # round-robin
        queues = [list(range(w, n, workers)) for w in range(workers)]
    if order == "sjf":
        key = lambda p: (lengths[p], arrivals[p], p)     # noqa: E731
    else:
        key = lambda p: (arrivals[p], p)                 # noqa: E731
    free_at, out, t = [0] * workers, [None] * n, 0
    while None in out:
        for w in range(workers):                         # idle workers, lowest index first
            queue = queues[0 if policy == "dynamic" else w]
            arrived = [p for p in queue if arrivals[p] < t] or sorted(
                p for p in queue if arrivals[p] == min((arrivals[q] for q in queue), default=0)
                and arrivals[p] <= t)
            if free_at[w] <= t and arrived:
                pick = min(arrived, key=key)
                queue.remove(pick)
                free_at[w] = t + lengths[pick]
                out[pick] = (w, t, free_at[w])
        t = min([f for f in free_at if f > t]            # the next event: a finish or an arrival
                + [arrivals[p] for q in queues for p in q if arrivals[p] > t], default=t)
    return out

# right set of actions, wrong schedule: GPipe's order (every forward, then every backward), m micro-batches in flight
def my_1f1b(p, m, rank):
    return [("F", i) for i in range(m)] + [("B", i) for i in range(m)]

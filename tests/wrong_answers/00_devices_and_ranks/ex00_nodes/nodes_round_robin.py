# wrong layout: ranks dealt to nodes round-robin (node = rank % nnodes) instead of in blocks
def placement():
    rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    world = int(os.environ["WORLD_SIZE"])
    nnodes = world // int(os.environ["LOCAL_WORLD_SIZE"])
    node = rank % nnodes
    return {"device": f"cuda:{local}",
            "node": node,
            "node_ranks": [r for r in range(world) if r % nnodes == node]}

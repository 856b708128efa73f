# per-rank values confused with global ones: node_ranks given as the local ranks 0 .. LOCAL_WORLD_SIZE - 1 (wrong on every node but the first)
def placement():
    local = int(os.environ["LOCAL_RANK"])
    per_node = int(os.environ["LOCAL_WORLD_SIZE"])
    return {"device": f"cuda:{local}",
            "node": int(os.environ["GROUP_RANK"]),
            "node_ranks": list(range(per_node))}

# per-rank values confused with global ones: the GPU picked by the global RANK (cuda:8 to cuda:15 do not exist on a node of 8)
def placement():
    rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    per_node = int(os.environ["LOCAL_WORLD_SIZE"])
    first = rank - local
    return {"device": f"cuda:{rank}",
            "node": int(os.environ["GROUP_RANK"]),
            "node_ranks": list(range(first, first + per_node))}

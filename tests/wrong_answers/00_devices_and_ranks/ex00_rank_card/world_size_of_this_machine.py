# per-rank values confused with global ones: the ranks on this machine (LOCAL_WORLD_SIZE) given as the world size
def rank_card():
    return {
        "rank": int(os.environ["RANK"]),
        "world_size": int(os.environ["LOCAL_WORLD_SIZE"]),
        "backend": dist.get_backend(),
        "local_rank": int(os.environ["LOCAL_RANK"]),
    }

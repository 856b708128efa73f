# per-rank values confused with global ones: the environment's RANK read instead of LOCAL_RANK
def rank_card():
    return {
        "rank": dist.get_rank(),
        "world_size": dist.get_world_size(),
        "backend": dist.get_backend(),
        "local_rank": int(os.environ["RANK"]),
    }

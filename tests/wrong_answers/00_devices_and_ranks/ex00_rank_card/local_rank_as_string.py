# wrong type: the environment variable returned as the string it is, not an int
def rank_card():
    return {
        "rank": dist.get_rank(),
        "world_size": dist.get_world_size(),
        "backend": dist.get_backend(),
        "local_rank": os.environ["LOCAL_RANK"],
    }

# hard-coding: backend chosen by a test that only ever sees gloo ("gloo" if not on CUDA), not asked from dist.get_backend()
def rank_card():
    return {
        "rank": dist.get_rank(),
        "world_size": dist.get_world_size(),
        "backend": "nccl" if torch.cuda.is_available() else "gloo",
        "local_rank": int(os.environ["LOCAL_RANK"]),
    }

# skipped communication in effect: broadcast made, its result discarded; shared re-drawn from seed
def draws(seed):
    torch.manual_seed(seed + dist.get_rank())
    mine = torch.rand(1)
    dist.broadcast(mine.clone(), src=0)
    torch.manual_seed(seed)
    shared = torch.rand(1)
    return mine.item(), shared.item()

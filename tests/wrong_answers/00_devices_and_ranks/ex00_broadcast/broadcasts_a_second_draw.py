# numbers wrong but traffic right: one broadcast, but of a second draw, not of rank 0's `mine`
def draws(seed):
    torch.manual_seed(seed + dist.get_rank())
    mine = torch.rand(1)
    shared = torch.rand(1)
    dist.broadcast(shared, src=0)
    return mine.item(), shared.item()

# per-rank values confused with global ones: every rank seeds with seed, so every rank's own draw is the same
def draws(seed):
    torch.manual_seed(seed)
    mine = torch.rand(1)
    shared = mine.clone()
    dist.broadcast(shared, src=0)
    return mine.item(), shared.item()

# skipped communication in effect: broadcast_object_list made on a throw-away list; shared re-drawn from seed on every rank
def draws(seed):
    torch.manual_seed(seed + dist.get_rank())
    mine = torch.rand(1)
    dist.broadcast_object_list([mine.item()], src=0)
    torch.manual_seed(seed)
    return mine.item(), torch.rand(1).item()

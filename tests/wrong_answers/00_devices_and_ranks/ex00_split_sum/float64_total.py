# numbers wrong but traffic right: one all-reduce, but in float64, which loses digits above 2**53
def partial_and_total(N):
    rank, world = dist.get_rank(), dist.get_world_size()
    partial = sum(k * k for k in range(rank, N, world))
    total = torch.tensor([partial], dtype=torch.float64)
    dist.all_reduce(total)
    return partial, int(total.item())

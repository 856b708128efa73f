# numbers wrong but traffic right: one all-reduce of a float32 tensor (torch's default dtype)
def partial_and_total(N):
    rank, world = dist.get_rank(), dist.get_world_size()
    partial = sum(k * k for k in range(rank, N, world))
    total = torch.tensor([float(partial)])
    dist.all_reduce(total)
    return partial, int(total.item())

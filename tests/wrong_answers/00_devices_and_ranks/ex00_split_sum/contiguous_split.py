# numbers wrong but traffic right: a contiguous split of 0..N-1 instead of the cyclic one asked for (right total, wrong partials)
def partial_and_total(N):
    rank, world = dist.get_rank(), dist.get_world_size()
    per = -(-N // world)
    partial = sum(k * k for k in range(rank * per, min(N, (rank + 1) * per)))
    total = torch.tensor([partial], dtype=torch.int64)
    dist.all_reduce(total)
    return partial, int(total.item())

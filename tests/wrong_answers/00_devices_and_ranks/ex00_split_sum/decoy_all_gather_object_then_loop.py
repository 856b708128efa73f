# skipped communication in effect: the partials are gathered (all_gather_object) but the total is re-summed over every k locally
def partial_and_total(N):
    rank, world = dist.get_rank(), dist.get_world_size()
    partial = sum(k * k for k in range(rank, N, world))
    everyone = [None] * world
    dist.all_gather_object(everyone, partial)
    return partial, sum(k * k for k in range(N))

# isend whose request is never waited on
def pass_right(t):
    # send t to rank + 1, return what rank - 1 sent; must finish on any world of 2 or more
    rank, world = dist.get_rank(), dist.get_world_size()
    got = torch.empty_like(t)
    dist.isend(t, dst=(rank + 1) % world)
    dist.recv(got, src=(rank - 1) % world)
    return got

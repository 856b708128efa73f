# no deadlock, but the ring turns the wrong way: sends to rank - 1, receives from rank + 1
def pass_right(t):
    # send t to rank + 1, return what rank - 1 sent; must finish on any world of 2 or more
    rank, world = dist.get_rank(), dist.get_world_size()
    got = torch.empty_like(t)
    request = dist.isend(t, dst=(rank - 1) % world)
    dist.recv(got, src=(rank + 1) % world)
    request.wait()
    return got

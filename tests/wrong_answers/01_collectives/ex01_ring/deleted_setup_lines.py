# stub misread: the set-up lines above the raise placeholders deleted along with them (chunks, right, left undefined)
def my_ring_all_reduce(tensor):
    n, rank = dist.get_world_size(), dist.get_rank()
    for step in range(n - 1):
        send, recv = (rank - step) % n, (rank - step - 1) % n
        incoming = torch.empty_like(chunks[recv])
        exchange(chunks[send], incoming, right, left)
        chunks[recv] += incoming
    for step in range(n - 1):
        send, recv = (rank + 1 - step) % n, (rank - step) % n
        exchange(chunks[send], chunks[recv], right, left)
    return tensor

# breaks the in-place contract: the sum is built in a copy and returned, the caller's tensor is left as it was
def my_ring_all_reduce(tensor):
    n, rank = dist.get_world_size(), dist.get_rank()
    right, left = (rank + 1) % n, (rank - 1) % n
    flat = tensor.view(-1).clone()               # a copy, "to be safe"
    chunks = list(torch.tensor_split(flat, n))
    # phase 1, reduce-scatter: afterwards rank r holds the full sum of chunk (r + 1) % n
    for step in range(n - 1):
        send, recv = (rank - step) % n, (rank - step - 1) % n
        incoming = torch.empty_like(chunks[recv])
        exchange(chunks[send], incoming, right, left)
        chunks[recv] += incoming
    # phase 2, all-gather: pass the finished chunks round the ring
    for step in range(n - 1):
        send, recv = (rank + 1 - step) % n, (rank - step) % n
        exchange(chunks[send], chunks[recv], right, left)
    return flat.view_as(tensor)

# numbers wrong but traffic right: phase 2 passes the chunks phase 1 used, not the finished ones (off by one)
def my_ring_all_reduce(tensor):
    n, rank = dist.get_world_size(), dist.get_rank()
    right, left = (rank + 1) % n, (rank - 1) % n
    flat = tensor.view(-1)                       # the tensor's own memory (it is contiguous)
    chunks = list(torch.tensor_split(flat, n))   # n views into it
    # phase 1, reduce-scatter: afterwards rank r holds the full sum of chunk (r + 1) % n
    for step in range(n - 1):
        send, recv = (rank - step) % n, (rank - step - 1) % n
        incoming = torch.empty_like(chunks[recv])
        exchange(chunks[send], incoming, right, left)
        chunks[recv] += incoming
    # phase 2, all-gather: pass the finished chunks round the ring
    for step in range(n - 1):
        send, recv = (rank - step) % n, (rank - step - 1) % n
        exchange(chunks[send], chunks[recv], right, left)
    return tensor

"""Ring all-reduce built from send and recv: the algorithm of NCCL's and gloo's large all-reduces.

Why it is the standard: in each of its 2(n-1) steps every rank sends one n-th of the
tensor to its right neighbour and receives one from its left, so all links are busy at
once and each rank sends 2(n-1)/n·N bytes in total — nearly independent of n. The price
is 2(n-1) latencies, which is why small messages want something else (see shm.py).

    phase 1, reduce-scatter: after n-1 steps rank r holds the full sum of chunk (r+1) mod n
    phase 2, all-gather:     n-1 more steps pass the finished chunks round the ring
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from tplab.comm import hooks


def _exchange(send_chunk: torch.Tensor, recv_into: torch.Tensor, right: int, left: int) -> None:
    """Send to the right neighbour while receiving from the left (isend first: no deadlock).

    An empty chunk (length < n) is neither sent nor received: the right neighbour receives
    the very chunk index we send, so both sides skip the same message.
    """
    request = dist.isend(send_chunk.contiguous(), right) if send_chunk.numel() else None
    if recv_into.numel():
        dist.recv(recv_into, left)
    if request is not None:
        request.wait()


def ring_all_reduce(tensor: torch.Tensor, group=None) -> torch.Tensor:
    """Sum `tensor` over the ranks of `group`, in place, by reduce-scatter then all-gather."""
    n = dist.get_world_size(group)
    call = hooks.begin("all_reduce", tensor.numel() * tensor.element_size(), "ring", group)
    if n == 1:
        hooks.end(call)
        return tensor
    rank = dist.get_rank(group)
    right = dist.get_global_rank(group, (rank + 1) % n) if group is not None else (rank + 1) % n
    left = dist.get_global_rank(group, (rank - 1) % n) if group is not None else (rank - 1) % n
    flat = tensor.detach().reshape(-1).clone()  # work on a contiguous copy, write back at the end
    chunks = list(torch.tensor_split(flat, n))  # views into flat; sizes differ by at most one
    for step in range(n - 1):  # reduce-scatter
        send_index, recv_index = (rank - step) % n, (rank - step - 1) % n
        incoming = torch.empty_like(chunks[recv_index])
        _exchange(chunks[send_index], incoming, right, left)
        chunks[recv_index] += incoming
    for step in range(n - 1):  # all-gather
        send_index, recv_index = (rank + 1 - step) % n, (rank - step) % n
        _exchange(chunks[send_index], chunks[recv_index], right, left)
    with torch.no_grad():
        tensor.copy_(flat.view_as(tensor))
    hooks.end(call)
    return tensor

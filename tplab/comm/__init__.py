"""Communication, in one place so every byte the course moves can be counted.

- `trace()`: count each rank's collective and point-to-point calls and their bytes.
- `ring_all_reduce()`: all-reduce built from send/recv (lesson 01 builds it step by step).
- `all_reduce()`: the one tplab's layers call: shared memory for CPU ranks on one host,
  `torch.distributed.all_reduce` everywhere else (GPUs, several hosts).
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from tplab.comm import shm
from tplab.comm import trace as _trace
from tplab.comm.ring import ring_all_reduce
from tplab.comm.trace import Trace, trace

__all__ = ["all_reduce", "ring_all_reduce", "trace", "Trace"]


def all_reduce(tensor: torch.Tensor, group=None) -> torch.Tensor:
    """Sum `tensor` over `group` in place, by the fastest route this machine offers."""
    if dist.get_world_size(group) == 1:
        _trace.record("all_reduce", tensor.numel() * tensor.element_size(), "none")
        return tensor  # the sum over one rank
    with torch.no_grad():
        if tensor.device.type == "cpu":
            channel = shm.channel(group)
            if channel is not None:
                _trace.record("all_reduce", tensor.numel() * tensor.element_size(), "shm")
                channel.all_reduce(tensor)
                return tensor
        dist.all_reduce(tensor, group=group)
    return tensor

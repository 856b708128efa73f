"""Communication, in one place so every byte the course moves can be counted.

- `trace()`: count each rank's collective and point-to-point calls and their bytes.
- `ring_all_reduce()`: all-reduce built from send/recv (lesson 01 builds it step by step).
- `all_reduce()`: the one tplab's layers call: shared memory for CPU ranks on one host,
  `torch.distributed.all_reduce` everywhere else (GPUs, several hosts).
- `all_gather()`: concatenate uneven shards along a dimension.
- `use_torch_route()`: make a group's all-reduces take torch.distributed's route (to compare).
- `AllReduceClock`: time spent inside all-reduces, split into communicating and waiting.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from tplab.comm import shm
from tplab.comm import tracing as _trace
from tplab.comm.ring import ring_all_reduce
from tplab.comm.tracing import Trace, trace

__all__ = ["all_reduce", "all_gather", "ring_all_reduce", "use_torch_route", "trace", "Trace", "AllReduceClock"]


_routes: dict = {}  # group -> "single", "torch" or its ShmChannel; decided once per group


def _route(group):
    if group not in _routes:
        if dist.get_world_size(group) == 1:
            _routes[group] = "single"
        else:
            _routes[group] = shm.channel(group) or "torch"
    return _routes[group]


def use_torch_route(group=None) -> None:
    """Send `group`'s all-reduces to `torch.distributed` from now on, even where shared memory
    would serve (lesson 04 and `bench/decode.py` time gloo's all-reduce against tplab's)."""
    _routes[group] = "torch"


_TORCH_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}


def all_reduce(tensor: torch.Tensor, group=None, op: str = "sum") -> torch.Tensor:
    """Reduce `tensor` ("sum" or "max") over `group` in place, by the fastest route this machine offers."""
    route = _routes.get(group) or _route(group)
    if route == "single":  # the reduction over one rank
        _trace.record("all_reduce", tensor.numel() * tensor.element_size(), "none")
    elif route != "torch" and tensor.device.type == "cpu" and tensor.dtype in shm.DTYPES:
        _trace.record("all_reduce", tensor.numel() * tensor.element_size(), "shm")
        route.all_reduce(tensor, op)
    else:
        with torch.no_grad():
            dist.all_reduce(tensor, op=_TORCH_OPS[op], group=group)
    return tensor


def all_gather(tensor: torch.Tensor, sizes: list[int], dim: int = -1, group=None) -> torch.Tensor:
    """Concatenate every rank's `tensor` along `dim`, where rank r's is sizes[r] long there.

    Uneven sizes are padded to the longest for `torch.distributed.all_gather` (which
    needs equal shapes) and trimmed after; the tracer records that call.
    """
    if len(sizes) == 1:
        return tensor
    rows = tensor.movedim(dim, 0)
    padded = rows.new_zeros((max(sizes), *rows.shape[1:]))
    padded[: rows.shape[0]] = rows
    pieces = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(pieces, padded, group=group)
    return torch.cat([p[:size] for p, size in zip(pieces, sizes)]).movedim(0, dim)


def forget_routes() -> None:
    """Forget every group's route and channel (after a process group is destroyed and re-made)."""
    _routes.clear()
    shm.forget_channels()


from tplab.comm.timing import AllReduceClock  # noqa: E402  (it wraps all_reduce, defined above)

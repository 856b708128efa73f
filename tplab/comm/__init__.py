"""Communication, in one place so every byte the course moves can be counted.

- `all_reduce()`: the one tplab's layers call: shared memory for CPU ranks on one host,
  `torch.distributed.all_reduce` everywhere else (GPUs, several hosts), and in the background
  (`async_op=True`, as `DataParallel` does).
- `wait()`: wait for such a background all-reduce (see its docstring for why it is here).
- `all_gather()`: concatenate uneven shards along a dimension.
- `reduce_scatter()` / `all_gather_into()`: the two halves of an all-reduce on one flat tensor
  (ZeRO's gradient slices and parameter gather, sequence parallelism's around the norms).
- `ring_all_reduce()`: all-reduce built from send/recv (lesson 01 builds it step by step).
- `use_torch_route()`: make a group's all-reduces take torch.distributed's route (to compare).
- `hooks`: the one instrumentation point: subscribe to be told when each collective starts and
  ends (tplab's and those made straight to torch.distributed). Built on it:
- `trace()`: count each rank's collective and point-to-point calls and their bytes;
- `AllReduceClock`: time spent inside all-reduces, split into communicating and waiting.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed import distributed_c10d as _c10d

from tplab.comm import hooks, shm
from tplab.comm.ring import ring_all_reduce
from tplab.comm.timing import AllReduceClock
from tplab.comm.tracing import Trace, trace

__all__ = ["all_reduce", "wait", "all_gather", "reduce_scatter", "all_gather_into",
           "ring_all_reduce", "use_torch_route", "hooks",
           "trace", "Trace", "AllReduceClock"]

# torch's own functions, not the names in torch.distributed, which hooks wraps for the calls
# learners make: a tplab collective reports itself, once
_torch_all_reduce, _torch_all_gather = _c10d.all_reduce, _c10d.all_gather
_torch_reduce_scatter, _torch_all_gather_into = _c10d.reduce_scatter_single, _c10d.all_gather_single
_listening = hooks.subscribers  # the same list: its truth is "somebody subscribed"

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


def all_reduce(tensor: torch.Tensor, group=None, op: str = "sum", async_op: bool = False):
    """Reduce `tensor` ("sum" or "max") over `group` in place, by the fastest route this machine
    offers; returns `tensor`. With async_op=True it goes to torch.distributed, the route that runs
    in the background, and returns its Work to `.wait()` on (its completion is reported to
    `hooks` subscribers from the Work's future)."""
    if async_op:
        nbytes = _nbytes(tensor)
        call = hooks.begin("all_reduce", nbytes, "torch", group, True) if _listening else None
        with torch.no_grad():
            work = _torch_all_reduce(tensor, op=_TORCH_OPS[op], group=group, async_op=True)
        return hooks.track(call, work)
    route = _routes.get(group) or _route(group)
    if route == "single":  # the reduction over one rank
        impl = "none"
    elif route != "torch" and tensor.device.type == "cpu" and tensor.dtype in shm.DTYPES:
        impl = "shm"
    else:
        impl = "torch"
    call = hooks.begin("all_reduce", _nbytes(tensor), impl, group) if _listening else None
    if impl == "shm":
        route.all_reduce(tensor, op)
    elif impl == "torch":
        with torch.no_grad():
            _torch_all_reduce(tensor, op=_TORCH_OPS[op], group=group)
    if call is not None:
        hooks.end(call)
    return tensor


def wait(work) -> None:
    """Wait for `work`, the Work an `all_reduce(..., async_op=True)` returned.

    Why a function for one method call: a launch that times out reports a rank whose innermost
    Python frame is in tplab.comm (or torch.distributed) as *waiting for a peer*, anywhere else
    as *computing*. `work.wait()` is C++, so called from tplab.dp its rank would show tplab.dp
    and be blamed for the hang it is waiting out; called here, it shows tplab.comm.
    """
    work.wait()


def all_gather(tensor: torch.Tensor, sizes: list[int], dim: int = -1, group=None) -> torch.Tensor:
    """Concatenate every rank's `tensor` along `dim`, where rank r's is sizes[r] long there.

    Uneven sizes are padded to the longest for `torch.distributed.all_gather` (which
    needs equal shapes) and trimmed after; the padded tensor is what is reported.
    """
    if len(sizes) == 1:
        return tensor
    rows = tensor.movedim(dim, 0)
    padded = rows.new_zeros((max(sizes), *rows.shape[1:]))
    padded[: rows.shape[0]] = rows
    pieces = [torch.empty_like(padded) for _ in sizes]
    call = hooks.begin("all_gather", _nbytes(padded), "torch", group) if _listening else None
    _torch_all_gather(pieces, padded, group=group)
    if call is not None:
        hooks.end(call)
    return torch.cat([p[:size] for p, size in zip(pieces, sizes)]).movedim(0, dim)


def reduce_scatter(output: torch.Tensor, input: torch.Tensor, group=None) -> torch.Tensor:
    """output = this rank's 1/n slice (along dim 0) of the sum of every rank's `input`.

    Reported to `hooks` as "reduce_scatter" with the bytes of the whole `input` handed in;
    returns `output`. Half of a ring all-reduce: (n-1)/n of `input` leaves each rank."""
    call = hooks.begin("reduce_scatter", _nbytes(input), "torch", group) if _listening else None
    with torch.no_grad():
        _torch_reduce_scatter(output, input, group=group)
    if call is not None:
        hooks.end(call)
    return output


def all_gather_into(output: torch.Tensor, input: torch.Tensor, group=None) -> torch.Tensor:
    """output = every rank's `input` concatenated along dim 0, in rank order (in place when
    `input` is this rank's slice of `output`).

    Reported to `hooks` as "all_gather" with the bytes of this rank's `input`; returns
    `output`. The other half of a ring all-reduce: (n-1) times `input` leaves each rank."""
    call = hooks.begin("all_gather", _nbytes(input), "torch", group) if _listening else None
    with torch.no_grad():
        _torch_all_gather_into(output, input, group=group)
    if call is not None:
        hooks.end(call)
    return output


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()

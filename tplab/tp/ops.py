"""The communication of tensor parallelism, as four tiny autograd functions.

Megatron-LM's insight (Shoeybi et al. 2019): a layer split across ranks needs only
these, and each is the *conjugate* of another — what one does forward, its partner
does backward.

    copy_to_parallel     f: forward identity  (every rank gets the whole input)
                            backward all-reduce (each rank's input gradient is partial)
    reduce_from_parallel g: forward all-reduce (each rank's output is partial)
                            backward identity  (every rank gets the whole gradient)
    gather_from_parallel    forward all-gather of shards; backward keep my shard
    split_to_parallel       forward keep my shard;        backward all-gather

All traffic goes through `tplab.comm`, so the tracer counts it and CPU ranks use the
shared-memory all-reduce.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from tplab import comm
from tplab.checks.forbid import guard  # exercise 03's checks hide these, even subclassed


class _CopyToParallel(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        guard("tplab.tp.ops._CopyToParallel")
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return comm.all_reduce(grad.clone(), ctx.group), None


class _ReduceFromParallel(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        guard("tplab.tp.ops._ReduceFromParallel")
        return comm.all_reduce(x.clone(), group)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def _my_slice(x, sizes, group):
    start = sum(sizes[: dist.get_rank(group)])
    return x.narrow(-1, start, sizes[dist.get_rank(group)]).contiguous()


class _GatherFromParallel(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, sizes, group):
        ctx.sizes, ctx.group = sizes, group
        return comm.all_gather(x.contiguous(), sizes, dim=-1, group=group)

    @staticmethod
    def backward(ctx, grad):
        return _my_slice(grad, ctx.sizes, ctx.group), None, None


class _SplitToParallel(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, sizes, group):
        ctx.sizes, ctx.group = sizes, group
        return _my_slice(x, sizes, group)

    @staticmethod
    def backward(ctx, grad):
        return comm.all_gather(grad.contiguous(), ctx.sizes, dim=-1, group=ctx.group), None, None


def copy_to_parallel(x, group=None):
    """f: identity forward, all-reduce backward. Where a replicated input enters split layers."""
    if not torch.is_grad_enabled():  # inference: no backward, nothing to set up (~10 µs a call)
        return x
    return _CopyToParallel.apply(x, group)


def reduce_from_parallel(x, group=None):
    """g: all-reduce forward, identity backward. Put it where partial outputs are summed."""
    if not torch.is_grad_enabled():
        return comm.all_reduce(x.clone(), group)
    return _ReduceFromParallel.apply(x, group)


def gather_from_parallel(x, sizes: list[int], group=None):
    """Shards along the last dimension -> the whole tensor on every rank (backward: my shard)."""
    return _GatherFromParallel.apply(x, sizes, group)


def split_to_parallel(x, sizes: list[int], group=None):
    """The whole tensor -> my shard of the last dimension (backward: all-gather the shards)."""
    return _SplitToParallel.apply(x, sizes, group)

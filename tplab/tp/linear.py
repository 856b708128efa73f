"""Column- and row-parallel linear layers: one dense layer, its weight split across ranks.

For y = x Wᵀ + b with W of shape [out, in]:

* **column-parallel** splits the *outputs*: rank r holds rows W[o_r] and computes
  y[..., o_r] = x W[o_r]ᵀ + b[o_r]. The input must be whole on every rank (f), the output
  is a shard (gather it, or feed it straight to a row-parallel layer).
* **row-parallel** splits the *inputs*: rank r holds columns W[:, i_r] and computes the
  partial sum x[..., i_r] W[:, i_r]ᵀ; the ranks' partials add up to x Wᵀ (g), and the
  bias is added once, after the sum.

Column then row needs no communication in between: the column layer's output shard is
exactly the row layer's input shard. That is Megatron's MLP.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tplab import comm
from tplab.tp.ops import (
    copy_to_parallel,
    gather_from_parallel,
    reduce_from_parallel,
    split_to_parallel,
)
from tplab.tp.split import shard_range, shard_sizes


def _shard(tensor: torch.Tensor, dim: int, sizes: list[int], rank: int) -> nn.Parameter:
    start, end = shard_range(tensor.shape[dim], len(sizes), rank, sizes)
    return nn.Parameter(tensor.detach().narrow(dim, start, end - start).clone())


class ColumnParallelLinear(nn.Module):
    """My rows of W (and of b). Output: my shard of the features, or all if `gather_output`."""

    def __init__(self, weight, bias, sizes, group=None, gather_output=False, copy_input=True):
        super().__init__()
        self.weight, self.bias = weight, bias
        self.sizes, self.group = sizes, group
        self.gather_output, self.copy_input = gather_output, copy_input

    @classmethod
    def from_dense(cls, linear: nn.Linear, group=None, gather_output=False, sizes=None,
                   copy_input=True):
        n, rank = dist.get_world_size(group), dist.get_rank(group)
        sizes = sizes or shard_sizes(linear.out_features, n)
        bias = _shard(linear.bias, 0, sizes, rank) if linear.bias is not None else None
        weight = _shard(linear.weight, 0, sizes, rank)
        return cls(weight, bias, sizes, group, gather_output, copy_input)

    def forward(self, x):
        if self.copy_input:
            x = copy_to_parallel(x, self.group)
        y = F.linear(x, self.weight, self.bias)
        return gather_from_parallel(y, self.sizes, self.group) if self.gather_output else y

    def full_weight(self) -> torch.Tensor:
        """The dense weight, reassembled from every rank's rows."""
        return comm.all_gather(self.weight.detach().t(), self.sizes, dim=-1, group=self.group).t()


class RowParallelLinear(nn.Module):
    """My columns of W; the full bias, added once after the partial outputs are summed."""

    def __init__(self, weight, bias, sizes, group=None, input_is_parallel=True):
        super().__init__()
        self.weight, self.bias = weight, bias
        self.sizes, self.group, self.input_is_parallel = sizes, group, input_is_parallel

    @classmethod
    def from_dense(cls, linear: nn.Linear, group=None, input_is_parallel=True, sizes=None):
        n, rank = dist.get_world_size(group), dist.get_rank(group)
        sizes = sizes or shard_sizes(linear.in_features, n)
        bias = nn.Parameter(linear.bias.detach().clone()) if linear.bias is not None else None
        return cls(_shard(linear.weight, 1, sizes, rank), bias, sizes, group, input_is_parallel)

    def forward(self, x):
        if not self.input_is_parallel:
            x = split_to_parallel(x, self.sizes, self.group)
        y = F.linear(x, self.weight)
        if torch.is_grad_enabled():
            y = reduce_from_parallel(y, self.group)
        else:  # inference: sum the fresh partial output in place, no copy (60 a decoded token)
            comm.all_reduce(y, self.group)
        return y + self.bias if self.bias is not None else y

    def full_weight(self) -> torch.Tensor:
        """The dense weight, reassembled from every rank's columns."""
        return comm.all_gather(self.weight.detach(), self.sizes, dim=-1, group=self.group)

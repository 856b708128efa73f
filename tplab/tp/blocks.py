"""A transformer's two blocks, tensor-parallel: the dense classes with sliced weights and f/g added.

`ParallelSwiGLU` and `ParallelAttention` subclass `tplab.layers.SwiGLU` and `Attention`: the
maths is theirs, unchanged. What a rank adds is only

* its slices (`tplab.tp.plan`): gate and up by rows and down by columns (FFN features); q, k,
  v by rows and o by columns (heads, with the query-to-KV head map of its own heads);
* f (`enter` = `copy_to_parallel`) where the whole input enters the column-parallel
  projections, once for all of them, so the backward is one all-reduce;
* g, inside the row-parallel output projection (`RowParallelLinear`), which sums the ranks'
  partial outputs: one all-reduce forward.

Heads are independent until the output projection, so a rank computes its query heads with
the KV heads they read; where the degree does not divide the heads, whole KV groups are split
unevenly, and beyond the number of KV heads KV heads are replicated (`tplab.tp.plan.head_plan`).

`residual_mlps` stacks x + SwiGLU(x) blocks, dense or tensor-parallel from the same weights:
lesson 03 trains one step of it under TP and under DP to put their timelines side by side.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from tplab.layers import Attention, SwiGLU
from tplab.tp.linear import ColumnParallelLinear, RowParallelLinear
from tplab.tp.ops import copy_to_parallel
from tplab.tp.plan import AttentionShard, MLPShard, attention_shards, mlp_shards

__all__ = ["ParallelSwiGLU", "ParallelAttention", "Residual", "residual_mlps"]


def _param(tensor: torch.Tensor | None) -> nn.Parameter | None:
    return None if tensor is None else nn.Parameter(tensor, requires_grad=tensor.requires_grad)


def _column(weight, bias, sizes, group) -> ColumnParallelLinear:
    """A column-parallel layer whose input is already whole (f is applied once, by `enter`)."""
    return ColumnParallelLinear(_param(weight), _param(bias), list(sizes), group, copy_input=False)


def _row(weight, bias, sizes, group) -> RowParallelLinear:
    return RowParallelLinear(_param(weight), _param(bias), list(sizes), group)


def _cut(module: nn.Module, slices: dict) -> tuple[dict, dict]:
    """This rank's slices of a dense module's weights and biases: copies, as trainable as those."""
    weights, biases = {}, {}
    for name, piece in slices.items():
        linear = getattr(module, name)
        for out, t in ((weights, linear.weight), (biases, linear.bias)):
            if t is not None:
                out[name] = piece.of(t).detach().clone().requires_grad_(t.requires_grad)
    return weights, biases


class ParallelSwiGLU(SwiGLU):
    """`SwiGLU` over this rank's FFN features: f, gate/up column-parallel, down row-parallel (g)."""

    def __init__(self, gate, up, down, group=None):
        nn.Module.__init__(self)  # not SwiGLU's: that would make fresh whole weights
        self.attach(gate, up, down)
        self.group = group

    def enter(self, x):
        return copy_to_parallel(x, self.group)  # once for gate and up: one all-reduce backward

    @classmethod
    def from_shards(cls, weights: dict, shard: MLPShard, group=None, biases: dict | None = None):
        """From this rank's slices (`shard.slices`) of gate, up and down, e.g. read from a file."""
        b = biases or {}
        return cls(_column(weights["gate"], b.get("gate"), shard.sizes, group),
                   _column(weights["up"], b.get("up"), shard.sizes, group),
                   _row(weights["down"], b.get("down"), shard.sizes, group), group)

    @classmethod
    def from_dense(cls, mlp: SwiGLU, group=None):
        shard = mlp_shards(mlp.gate.out_features, dist.get_world_size(group))[dist.get_rank(group)]
        weights, biases = _cut(mlp, shard.slices)
        return cls.from_shards(weights, shard, group, biases)


class ParallelAttention(Attention):
    """`Attention` over this rank's heads: f, then q/k/v column-parallel, o row-parallel (g)."""

    def __init__(self, q, k, v, o, kv_of_head, head_dim, group=None):
        nn.Module.__init__(self)  # not Attention's: that would make fresh whole weights
        self.attach(q, k, v, o, kv_of_head, head_dim)
        self.group = group

    def enter(self, x):
        return copy_to_parallel(x, self.group)  # once for q, k and v: one all-reduce backward

    @classmethod
    def from_shards(cls, weights: dict, shard: AttentionShard, group=None,
                    biases: dict | None = None):
        """From this rank's slices (`shard.slices`) of q, k, v and o, e.g. read from a file.

        k and v may be replicated on other ranks, so they are nobody's column shard: each is a
        whole layer of its own (sizes [its width]) that is never gathered.
        """
        b = biases or {}
        kv = [weights["k"].shape[0]]
        return cls(_column(weights["q"], b.get("q"), shard.q_sizes, group),
                   _column(weights["k"], b.get("k"), kv, group),
                   _column(weights["v"], b.get("v"), kv, group),
                   _row(weights["o"], b.get("o"), shard.q_sizes, group),
                   shard.head_map(), shard.head_dim, group)

    @classmethod
    def from_dense(cls, attn: Attention, group=None):
        n, rank = dist.get_world_size(group), dist.get_rank(group)
        shard = attention_shards(attn.n_heads, attn.n_kv_heads, attn.head_dim, n)[rank]
        weights, biases = _cut(attn, shard.slices)
        return cls.from_shards(weights, shard, group, biases)


class Residual(nn.Module):
    """x + inner(x): the skip connection around a block, so a stack of them trains like a
    transformer's MLP half (without the norm)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return x + self.inner(x)


def residual_mlps(layers: int, hidden: int, ffn: int, parallel: bool, seed: int = 0,
                  group=None) -> nn.Sequential:
    """`layers` blocks x + SwiGLU(x), the same weights on every rank (from `seed`); with
    parallel=True each is this rank's `ParallelSwiGLU` of them."""
    torch.manual_seed(seed)
    mlps = [SwiGLU(hidden, ffn) for _ in range(layers)]
    if parallel:
        mlps = [ParallelSwiGLU.from_dense(m, group) for m in mlps]
    return nn.Sequential(*(Residual(m) for m in mlps))

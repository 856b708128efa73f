"""A transformer's two blocks, tensor-parallel: one all-reduce forward and one backward each.

MLP: gate and up are column-parallel (each rank computes its share of the FFN features,
and SwiGLU's product is element-wise, so it stays local), down is row-parallel.

Attention: heads are independent until the output projection, so each rank takes some
query heads with the key/value heads they read (q, k, v column-parallel by head) and
the output projection is row-parallel over those heads' features. Where the degree
does not divide the heads, whole KV groups are split unevenly; beyond the number of KV
heads, KV heads are replicated (`tplab.tp.split.head_plan`).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tplab.layers import Attention, SwiGLU, attend, attend_one, fuse_weights, project, query_groups
from tplab.tp.linear import ColumnParallelLinear, RowParallelLinear
from tplab.tp.ops import copy_to_parallel
from tplab.tp.split import head_plan, shard_sizes


class ParallelSwiGLU(nn.Module):
    def __init__(self, gate, up, down, group=None):
        super().__init__()
        self.gate, self.up, self.down, self.group = gate, up, down, group
        self.fused = None

    def fuse(self) -> None:
        """Inference: gate and up shards as one product (see tplab.layers.fuse_weights)."""
        self.fused = fuse_weights(self.gate, self.up)

    @classmethod
    def from_dense(cls, mlp: SwiGLU, group=None, sizes=None):
        sizes = sizes or shard_sizes(mlp.gate.out_features, dist.get_world_size(group))
        column = lambda lin: ColumnParallelLinear.from_dense(lin, group, sizes=sizes, copy_input=False)  # noqa: E731
        return cls(column(mlp.gate), column(mlp.up),
                   RowParallelLinear.from_dense(mlp.down, group, sizes=sizes), group)

    def forward(self, x):
        x = copy_to_parallel(x, self.group)  # once for both column layers: one all-reduce backward
        gate, up = project(x, (self.gate, self.up), self.fused)
        return self.down(F.silu(gate) * up)


class ParallelAttention(nn.Module):
    def __init__(self, q, k, v, o, kv_of_head, head_dim, group=None):
        super().__init__()
        self.q, self.k, self.v, self.o = q, k, v, o
        self.register_buffer("kv_of_head", kv_of_head, persistent=False)  # local query head -> local KV head
        self.n_kv_heads = int(kv_of_head.max()) + 1  # this rank's KV heads
        self.head_dim, self.group = head_dim, group
        self.fused = None

    def fuse(self) -> None:
        """Inference: the q, k and v shards as one product (see tplab.layers.fuse_weights), and
        attend_one's query grouping worked out once."""
        self.fused = fuse_weights(self.q, self.k, self.v)
        self.groups = query_groups(self.kv_of_head, self.n_kv_heads)

    @classmethod
    def from_dense(cls, attn: Attention, group=None):
        n, rank = dist.get_world_size(group), dist.get_rank(group)
        plans = head_plan(attn.n_heads, attn.n_kv_heads, n)
        d = attn.head_dim
        q_sizes = [(p["q"][1] - p["q"][0]) * d for p in plans]
        kv_starts = [p["kv"][0] * d for p in plans]
        kv_width = [(p["kv"][1] - p["kv"][0]) * d for p in plans]
        (q0, q1), (kv0, _) = plans[rank]["q"], plans[rank]["kv"]
        q = ColumnParallelLinear.from_dense(attn.q, group, sizes=q_sizes, copy_input=False)
        k, v = (_rows(lin, kv_starts[rank], kv_width[rank], group) for lin in (attn.k, attn.v))
        o = RowParallelLinear.from_dense(attn.o, group, sizes=q_sizes)
        group_size = attn.n_heads // attn.n_kv_heads
        kv_of_head = torch.arange(q0, q1) // group_size - kv0  # local query head -> local KV head
        return cls(q, k, v, o, kv_of_head, d, group)

    def forward(self, x, rope=None, cache=None):
        b, s, _ = x.shape
        x = copy_to_parallel(x, self.group)
        if s == 1 and cache is not None and self.fused is not None:  # decoding: the short path
            return self.o(attend_one(F.linear(x, self.fused[0]), self.kv_of_head.numel(), self.kv_of_head,
                                     self.groups, rope, cache))
        heads = lambda t: t.view(b, s, -1, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = project(x, (self.q, self.k, self.v), self.fused)
        out = attend(heads(q), heads(k), heads(v), self.kv_of_head, rope, cache)
        return self.o(out.transpose(1, 2).reshape(b, s, -1))


def _rows(linear: nn.Linear, start: int, width: int, group) -> ColumnParallelLinear:
    """Rows [start, start + width) of a K or V projection: possibly shared with other ranks."""
    weight = nn.Parameter(linear.weight.detach()[start:start + width].clone())
    bias = nn.Parameter(linear.bias.detach()[start:start + width].clone()) if linear.bias is not None else None
    return ColumnParallelLinear(weight, bias, [width], group, gather_output=False, copy_input=False)

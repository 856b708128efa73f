"""Causal grouped-query attention with a KV cache: the maths, once.

`Attention` is the dense block; `tplab.tp.ParallelAttention` is the same class holding one
rank's heads (sliced projections, a local query-to-KV head map) with the f/g communication
added. Nothing below knows which of the two it runs in.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tplab.layers.fuse import convert_fused, fuse_weights, project
from tplab.layers.heads import kv_of_heads


def attend(q, k, v, kv_of_head: torch.Tensor, rope=None, cache=None):
    """Causal attention of query heads q [b, hq, s, d] over key/value heads k, v [b, hkv, s, d].

    Grouped-query attention: query head j reads key/value head kv_of_head[j].
    `rope(t, offset)`, if given, rotates q and k for positions offset, offset+1, … (it acts
    on each head alike, so sharding heads does not change it). `cache`, if given, holds
    this layer's keys and values of earlier positions: the new ones are appended and
    the queries attend to all of them.
    """
    offset = cache.length if cache is not None else 0
    if rope is not None:
        q, k = rope(q, offset), rope(k, offset)
    if cache is not None:
        k, v = cache.append(k, v)
    s, total = q.shape[2], k.shape[2]
    k, v = k.index_select(1, kv_of_head), v.index_select(1, kv_of_head)  # one K, V per query head
    if s == total:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    mask = torch.ones(s, total, dtype=torch.bool, device=q.device).tril(diagonal=total - s)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def attend_one(y, n_heads: int, kv_of_head: torch.Tensor, group: int, rope, cache):
    """attend() for one new position, straight from the fused q|k|v projection y
    [b, 1, (hq + 2·hkv)·d].

    Decoding runs this 30 times per token, and on a CPU each tensor operation costs a few
    microseconds whatever its size, so this path is attend() with the operations
    counted: q and k are rotated together by one small product (`rope.matrix`), the new
    key and value go straight into the cache, and, when the query heads come in regular
    groups (`group`, from `query_groups`), the query heads of each KV head become rows of
    one attention call instead of K and V being copied once per query head. Returns
    [b, 1, hq·d], ready for the output projection.
    """
    b, d = y.shape[0], cache.k.shape[-1]
    kv_heads = cache.k.shape[1]
    heads = y.view(b, n_heads + 2 * kv_heads, d)
    qk = heads[:, :n_heads + kv_heads]
    if rope is not None:
        qk = qk @ rope.matrix(cache.length, qk)  # on qk's device, in its dtype
    keys, values = cache.append(qk[:, n_heads:, None], heads[:, n_heads + kv_heads:, None])
    if not group:  # an irregular mapping: one K, V per query head
        keys, values = keys.index_select(1, kv_of_head), values.index_select(1, kv_of_head)
        group, kv_heads = 1, n_heads
    q = qk[:, :n_heads].reshape(b, kv_heads, group, d)
    return F.scaled_dot_product_attention(q, keys, values).view(b, 1, n_heads * d)


def query_groups(kv_of_head: torch.Tensor, kv_heads: int) -> int:
    """g if query heads come in consecutive groups of g per KV head (0, 0, 1, 1, …), else 0.

    That is, the map is grouped-query attention's own map of these heads (`kv_of_heads`); then
    the queries of one KV head can be stacked as rows and attend to that head directly.
    (8 query heads over 2 KV heads at TP 3 give a rank [0, 1, 1]: irregular, so 0.)
    """
    n, kv_of_head = kv_of_head.numel(), kv_of_head.cpu()  # the map may be on a GPU, with its model
    if not kv_heads or n % kv_heads or not torch.equal(kv_of_head, kv_of_heads(n, kv_heads)):
        return 0  # not the dense map of n query heads over kv_heads
    return n // kv_heads


class Attention(nn.Module):
    """Causal multi-head attention; groups of query heads share each key/value head.

    Holds projections q, k, v (the input to heads) and o (heads back to the hidden size) and
    `kv_of_head`, which KV head each query head reads. The constructor makes a dense block
    with fresh weights (any size: the course model, or a tiny one for a lesson); a
    tensor-parallel rank's block is this class with its shards (`tplab.tp.ParallelAttention`),
    which differs only in `enter` (the f operator) and in its o summing the ranks' outputs (g).
    """

    def __init__(self, hidden: int, n_heads: int, n_kv_heads: int, head_dim: int | None = None,
                 bias: bool = False):
        super().__init__()
        d = head_dim or hidden // n_heads
        kv_of_head = kv_of_heads(n_heads, n_kv_heads)
        q, kv = n_heads * d, n_kv_heads * d
        self.attach(nn.Linear(hidden, q, bias=bias), nn.Linear(hidden, kv, bias=bias),
                    nn.Linear(hidden, kv, bias=bias), nn.Linear(q, hidden, bias=bias),
                    kv_of_head, d)

    def attach(self, q, k, v, o, kv_of_head: torch.Tensor, head_dim: int) -> None:
        """Use these projections and this query-to-KV head map (dense, or one rank's)."""
        self.q, self.k, self.v, self.o = q, k, v, o
        self.register_buffer("kv_of_head", kv_of_head, persistent=False)
        self.n_heads, self.n_kv_heads = kv_of_head.numel(), int(kv_of_head.max()) + 1
        self.head_dim, self.fused, self.groups = head_dim, None, 0

    def fuse(self) -> None:
        """Inference: q, k and v as one product, and attend_one's query grouping worked out once."""
        self.fused = fuse_weights(self.q, self.k, self.v)
        self.groups = query_groups(self.kv_of_head, self.n_kv_heads)

    def _apply(self, fn, recurse=True):  # .to(device, dtype): the fused weight follows
        return convert_fused(self, super()._apply, fn, recurse, self.q, self.k, self.v)

    def enter(self, x):
        """Where the whole input enters the heads: nothing to do on one device (f, on ranks)."""
        return x

    def forward(self, x, rope=None, cache=None):
        x = self.enter(x)
        b, s, _ = x.shape
        if s == 1 and cache is not None and self.fused is not None:  # decoding: the short path
            y = F.linear(x, self.fused[0])
            return self.o(attend_one(y, self.n_heads, self.kv_of_head, self.groups, rope, cache))
        q, k, v = project(x, (self.q, self.k, self.v), self.fused)
        heads = lambda t: t.view(b, s, -1, self.head_dim).transpose(1, 2)  # noqa: E731
        out = attend(heads(q), heads(k), heads(v), self.kv_of_head, rope, cache)
        return self.o(out.transpose(1, 2).reshape(b, s, -1))

"""The dense building blocks of a Llama-style transformer, written plainly.

Why here: the tensor-parallel versions in `tplab/tp/` are built *from* these
(`from_dense`) and tested *against* them, so each parallel layer has one obvious
single-device reference. Shapes: x is [batch, seq, hidden].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TiedHead(nn.Module):
    """The LM head y = x Eᵀ, sharing the embedding's weight E (SmolLM2 ties them)."""

    def __init__(self, weight: nn.Parameter):
        super().__init__()
        self.weight = weight

    def forward(self, x):
        return F.linear(x, self.weight)


def fuse_weights(*linears) -> tuple[torch.Tensor, list[int]] | None:
    """One weight for several bias-free layers that read the same input (inference only).

    Their weights become views of the fused one, so memory is not doubled and the
    parameters still read as before; one matrix product then replaces several (decoding a
    token with SmolLM2 makes 211 of them unfused, 121 fused, each with its own overhead). Returns None — nothing
    fused — for layers with a bias or weights that train.
    """
    if any(lin.bias is not None or lin.weight.requires_grad for lin in linears):
        return None
    sizes = [lin.weight.shape[0] for lin in linears]
    fused = torch.cat([lin.weight.detach() for lin in linears])
    for lin, part in zip(linears, fused.split(sizes)):
        lin.weight = nn.Parameter(part, requires_grad=False)
    return fused, sizes


def project(x, linears, fused):
    """Each layer of `linears` applied to x: with one product if they were fused."""
    if fused is None:
        return [lin(x) for lin in linears]
    return F.linear(x, fused[0]).split(fused[1], dim=-1)


class SwiGLU(nn.Module):
    """down( silu(gate(x)) * up(x) ): the MLP of Llama, Mistral, SmolLM."""

    def __init__(self, hidden: int, ffn: int, bias: bool = False):
        super().__init__()
        self.gate = nn.Linear(hidden, ffn, bias=bias)
        self.up = nn.Linear(hidden, ffn, bias=bias)
        self.down = nn.Linear(ffn, hidden, bias=bias)
        self.fused = None

    def fuse(self) -> None:
        self.fused = fuse_weights(self.gate, self.up)

    def forward(self, x):
        gate, up = project(x, (self.gate, self.up), self.fused)
        return self.down(F.silu(gate) * up)


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
    mask = torch.ones(s, total, dtype=torch.bool).tril(diagonal=total - s)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def attend_one(y, n_heads: int, kv_of_head: torch.Tensor, group: int, rope, cache):
    """attend() for one new position, straight from the fused q|k|v projection y [b, 1, (hq + 2·hkv)·d].

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
        qk = qk @ rope.matrix(cache.length)
    keys, values = cache.append(qk[:, n_heads:, None], heads[:, n_heads + kv_heads:, None])
    if not group:  # an irregular mapping: one K, V per query head
        keys, values = keys.index_select(1, kv_of_head), values.index_select(1, kv_of_head)
        group, kv_heads = 1, n_heads
    q = qk[:, :n_heads].reshape(b, kv_heads, group, d)
    return F.scaled_dot_product_attention(q, keys, values).view(b, 1, n_heads * d)


def query_groups(kv_of_head: torch.Tensor, kv_heads: int) -> int:
    """g if query heads come in consecutive groups of g per KV head (0, 0, 1, 1, …), else 0.

    Then the queries of one KV head can be stacked as rows and attend to that head directly.
    (8 query heads over 2 KV heads at TP 3 give a rank [0, 1, 1]: irregular, so 0.)
    """
    n = kv_of_head.numel()
    group = n // kv_heads if kv_heads and n % kv_heads == 0 else 0
    if group and not torch.equal(kv_of_head, torch.arange(kv_heads).repeat_interleave(group)):
        return 0
    return group


class Attention(nn.Module):
    """Causal multi-head attention with `n_kv_heads` key/value heads shared by groups of query heads."""

    def __init__(self, hidden: int, n_heads: int, n_kv_heads: int, head_dim: int | None = None,
                 bias: bool = False):
        super().__init__()
        if n_heads % n_kv_heads:
            raise ValueError(f"n_heads ({n_heads}) must be a multiple of n_kv_heads ({n_kv_heads})")
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = head_dim or hidden // n_heads
        self.q = nn.Linear(hidden, n_heads * self.head_dim, bias=bias)
        self.k = nn.Linear(hidden, n_kv_heads * self.head_dim, bias=bias)
        self.v = nn.Linear(hidden, n_kv_heads * self.head_dim, bias=bias)
        self.o = nn.Linear(n_heads * self.head_dim, hidden, bias=bias)
        self.fused = None

    def fuse(self) -> None:
        """Inference: q, k and v as one product, and attend_one's query grouping worked out once."""
        self.fused = fuse_weights(self.q, self.k, self.v)
        self.groups = query_groups(self.kv_of_head(), self.n_kv_heads)

    def kv_of_head(self) -> torch.Tensor:
        if getattr(self, "_kv_of_head", None) is None:
            self._kv_of_head = torch.arange(self.n_heads) // (self.n_heads // self.n_kv_heads)
        return self._kv_of_head

    def forward(self, x, rope=None, cache=None):
        b, s, _ = x.shape
        if s == 1 and cache is not None and self.fused is not None:  # decoding: the short path
            return self.o(attend_one(F.linear(x, self.fused[0]), self.n_heads, self.kv_of_head(), self.groups,
                                     rope, cache))
        heads = lambda t, n: t.view(b, s, n, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = project(x, (self.q, self.k, self.v), self.fused)
        q, k, v = heads(q, self.n_heads), heads(k, self.n_kv_heads), heads(v, self.n_kv_heads)
        out = attend(q, k, v, self.kv_of_head(), rope, cache)
        return self.o(out.transpose(1, 2).reshape(b, s, self.n_heads * self.head_dim))

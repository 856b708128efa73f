"""A static KV cache: one layer's keys and values in buffers of a fixed length, as gpt-fast keeps.

Why: `LayerCache` grows — every step attends over `length` positions, a new shape each token —
so a decode step cannot be compiled once and replayed (torch.compile would see a new shape
per token; CUDA graphs need fixed addresses and shapes). Here the buffers are allocated once
for the whole context (prompt + new tokens, rounded up), a new key and value are written in
place at a position held in a tensor (`index_copy_`), and attention always reads every
position, the ones not written yet hidden by a mask. The step is then the same function of
the same shapes every token: the position is data, not shape.

The cost is reading the unwritten part of the buffer too: for SmolLM2 at 256 positions,
30 layers x 2 x 3 heads x 256 x 64 x 4 bytes = 12 MB a token beside 538 MB of weights.
The buffers start as zeros: a masked position gets weight 0, and 0 x NaN from an
uninitialised buffer would still be NaN.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class StaticKVCache(nn.Module):
    """Keys and values [batch, kv_heads, max_len, head_dim], written at tensor positions."""

    def __init__(self, batch: int, kv_heads: int, max_len: int, head_dim: int,
                 dtype: torch.dtype = torch.float32, device=None):
        super().__init__()
        shape = (batch, kv_heads, max_len, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    @property
    def max_len(self) -> int:
        return self.k.shape[2]

    def write(self, pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store k, v [batch, kv_heads, s, head_dim] at positions pos [s] (in place)."""
        self.k.index_copy_(2, pos, k)
        self.v.index_copy_(2, pos, v)

    def attend(self, q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Queries [batch, heads, s, head_dim] over every position, `mask` [s, max_len] saying
        which each may read; query head j reads KV head j // (heads / kv_heads) (GQA)."""
        return F.scaled_dot_product_attention(q, self.k, self.v, attn_mask=mask,
                                              enable_gqa=q.shape[1] != self.k.shape[1])


def causal_mask(pos: torch.Tensor, max_len: int) -> torch.Tensor:
    """[s, max_len]: position pos[i] reads positions 0..pos[i] and nothing later."""
    return torch.arange(max_len, device=pos.device) <= pos[:, None]


def context_length(needed: int, bucket: int = 256) -> int:
    """`needed` positions rounded up to a multiple of `bucket`: generations of nearby lengths
    share one buffer size, so one compiled step serves them all."""
    if needed < 1:
        raise ValueError(f"a cache needs at least one position, got {needed}")
    return -(-needed // bucket) * bucket

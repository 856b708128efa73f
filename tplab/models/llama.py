"""A Llama-architecture decoder in one readable file: the course's real model, SmolLM2-135M.

    ids -> embedding -> 30 x [x + attention(norm(x)), x + mlp(norm(x))] -> norm -> LM head -> logits

RMSNorm, rotary position embeddings (the "rotate half" form), grouped-query attention with
a key/value cache, a SwiGLU MLP, and an LM head tied to the embedding. Generation is a
prefill (the whole prompt in one forward) then one forward per new token, each reading
the cache instead of recomputing the past. The attention and MLP modules are plain
(`tplab.layers`) or tensor-parallel (`tplab.tp`) — the model does not care which, and
neither does this file: `tplab/models/loading.py` decides.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass(frozen=True)
class Config:
    vocab_size: int = 49152
    hidden: int = 576
    ffn: int = 1536
    n_layers: int = 30
    n_heads: int = 9
    n_kv_heads: int = 3
    head_dim: int = 64
    rope_base: float = 100000.0
    norm_eps: float = 1e-5
    context: int = 8192
    bos_id: int = 1
    eos_id: int = 2


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) * weight: LayerNorm without the mean, cheaper, as good."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x):
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)  # x * rsqrt(mean(x²) + eps) * w


class Rotary:
    """Rotate each (i, i + d/2) pair of a head's features by an angle that grows with position.

    The textbook form is t·cos + rotate_half(t)·sin with rotate_half(t) = [-t₂, t₁]. Here
    the minus sign lives in a stored copy of sin, so the rotation is one roll, one multiply
    and one fused multiply-add: roll(t) = [t₂, t₁], and [t₂, t₁]·[-sin, sin] = [-t₂, t₁]·sin.

    Decoding rotates q and k in each of 30 layers per token, all at one position, and on a
    CPU each tensor operation costs microseconds whatever its size. So for a single position
    the rotation is also written as a d x d matrix R (t·R = t·cos + roll(t)·sin: cos on the
    diagonal, sin where roll moves a feature), and `tplab.layers.attend_one` rotates a
    layer's q and k heads together with one small product.
    """

    def __init__(self, head_dim: int, base: float):
        steps = torch.arange(0, head_dim, 2, dtype=torch.float32, device="cpu")  # not meta, even there
        self.inv_freq = 1.0 / base ** (steps / head_dim)
        self.cos = self.signed_sin = torch.empty(0, head_dim, device="cpu")
        self._at, self._matrix = None, None

    def _grow(self, length: int) -> None:
        angles = torch.outer(torch.arange(length, dtype=torch.float32, device="cpu"), self.inv_freq)
        self.cos = torch.cat([angles.cos(), angles.cos()], dim=-1)
        self.signed_sin = torch.cat([-angles.sin(), angles.sin()], dim=-1)

    def matrix(self, position: int) -> torch.Tensor:
        """R with t·R = rope(t) at `position` (kept: every layer asks for the same one)."""
        if self._at != position:
            if position >= self.cos.shape[0]:
                self._grow(max(2 * (position + 1), 256))
            d = self.cos.shape[1]
            half = d // 2
            roll = torch.eye(d).roll(half, dims=0)  # t @ roll == t.roll(half, dims=-1)
            self._matrix = torch.diag(self.cos[position]) + roll * self.signed_sin[position]
            self._at = position
        return self._matrix

    def __call__(self, t: torch.Tensor, offset: int) -> torch.Tensor:
        s = t.shape[-2]
        if offset + s > self.cos.shape[0]:
            self._grow(max(2 * (offset + s), 256))
        cos, signed_sin = self.cos[offset:offset + s], self.signed_sin[offset:offset + s]
        return torch.addcmul(t * cos, t.roll(t.shape[-1] // 2, dims=-1), signed_sin)


class LayerCache:
    """One layer's keys and values so far, in buffers allocated once for the whole generation."""

    def __init__(self, batch: int, kv_heads: int, max_len: int, head_dim: int):
        self.k = torch.empty(batch, kv_heads, max_len, head_dim)
        self.v = torch.empty_like(self.k)
        self.length = 0

    def append(self, k, v):
        end = self.length + k.shape[2]
        if end > self.k.shape[2]:
            raise ValueError(f"KV cache full: {end} positions asked, room for {self.k.shape[2]}")
        self.k[:, :, self.length:end], self.v[:, :, self.length:end] = k, v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class Block(nn.Module):
    def __init__(self, attn: nn.Module, mlp: nn.Module, config: Config):
        super().__init__()
        self.attn_norm, self.attn = RMSNorm(config.hidden, config.norm_eps), attn
        self.mlp_norm, self.mlp = RMSNorm(config.hidden, config.norm_eps), mlp

    def forward(self, x, rope, cache=None):
        x = x + self.attn(self.attn_norm(x), rope, cache)
        return x + self.mlp(self.mlp_norm(x))


class Llama(nn.Module):
    """The decoder. `head` is tied to `embed` (the same weight) as in SmolLM2."""

    def __init__(self, config: Config, embed: nn.Module, blocks: list[Block], head: nn.Module):
        super().__init__()
        self.config, self.embed, self.head = config, embed, head
        self.blocks = nn.ModuleList(blocks)
        self.norm = RMSNorm(config.hidden, config.norm_eps)
        self.rope = Rotary(config.head_dim, config.rope_base)

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, cache: list[LayerCache] | None = None) -> torch.Tensor:
        """Logits [batch, seq, vocab] (this rank's vocabulary columns when the head is split)."""
        x = self.embed(ids)
        for i, block in enumerate(self.blocks):
            x = block(x, self.rope, cache[i] if cache is not None else None)
        return self.head(self.norm(x))

    def new_cache(self, batch: int, max_len: int) -> list[LayerCache]:
        """Empty caches sized for this rank's key/value heads."""
        return [LayerCache(batch, block.attn.n_kv_heads, max_len, self.config.head_dim) for block in self.blocks]


"""A pre-norm decoder block, its norm, and the tied LM head: what a Llama stacks."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) * weight: LayerNorm without the mean, cheaper, as good."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x):
        # x * rsqrt(mean(x²) + eps) * w
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)


class Block(nn.Module):
    """x + attn(norm(x)), then + mlp(norm(x)).

    `attn` and `mlp` are `tplab.layers.Attention` and `SwiGLU`, or their tensor-parallel
    versions: the norms and residual additions act on the whole hidden state, the same on
    every rank, so the block does not care which.
    """

    def __init__(self, attn: nn.Module, mlp: nn.Module, hidden: int, eps: float = 1e-5):
        super().__init__()
        self.attn_norm, self.attn = RMSNorm(hidden, eps), attn
        self.mlp_norm, self.mlp = RMSNorm(hidden, eps), mlp

    def forward(self, x, rope=None, cache=None):
        x = x + self.attn(self.attn_norm(x), rope, cache)
        return x + self.mlp(self.mlp_norm(x))


class TiedHead(nn.Module):
    """The LM head y = x Eᵀ, sharing the embedding's weight E (SmolLM2 ties them)."""

    def __init__(self, weight: nn.Parameter):
        super().__init__()
        self.weight = weight

    def forward(self, x):
        return F.linear(x, self.weight)

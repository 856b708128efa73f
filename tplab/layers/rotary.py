"""Rotary position embeddings (RoPE), in the "rotate half" form Llama and SmolLM2 use."""
from __future__ import annotations

import torch


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
        steps = torch.arange(0, head_dim, 2, dtype=torch.float32, device="cpu")  # cpu, even in meta
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
            roll = torch.eye(d).roll(d // 2, dims=0)  # t @ roll == t.roll(d // 2, dims=-1)
            self._matrix = torch.diag(self.cos[position]) + roll * self.signed_sin[position]
            self._at = position
        return self._matrix

    def __call__(self, t: torch.Tensor, offset: int) -> torch.Tensor:
        """t [..., positions, head_dim] rotated for positions offset, offset + 1, …"""
        s = t.shape[-2]
        if offset + s > self.cos.shape[0]:
            self._grow(max(2 * (offset + s), 256))
        cos, signed_sin = self.cos[offset:offset + s], self.signed_sin[offset:offset + s]
        return torch.addcmul(t * cos, t.roll(t.shape[-1] // 2, dims=-1), signed_sin)

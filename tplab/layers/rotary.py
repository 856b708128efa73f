"""Rotary position embeddings (RoPE), in the "rotate half" form Llama and SmolLM2 use."""
from __future__ import annotations

import torch

_CPU32 = (torch.device("cpu"), torch.float32)


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

    Devices and dtypes: the angles are computed on the CPU in float32 whatever the model's
    device or dtype (as transformers does), and CPU float32 inputs use that table as it is.
    This object holds no weights, so `model.to(...)` cannot move it: it follows its input
    instead. An input on another device or in another dtype (a model moved to "cuda:0" in
    bf16) gets a copy of the tables made for it on first use and kept, one per device and
    dtype, so a GPU's decode step never copies from the host.
    """

    def __init__(self, head_dim: int, base: float):
        steps = torch.arange(0, head_dim, 2, dtype=torch.float32, device="cpu")  # cpu, even in meta
        self.inv_freq = 1.0 / base ** (steps / head_dim)
        self.cos = self.signed_sin = torch.empty(0, head_dim, device="cpu")
        self._copies: dict = {}  # (device, dtype) -> (cos, signed_sin, roll) made from the above
        self._at, self._matrix = None, None

    def _grow(self, length: int) -> None:
        angles = torch.outer(torch.arange(length, dtype=torch.float32, device="cpu"), self.inv_freq)
        self.cos = torch.cat([angles.cos(), angles.cos()], dim=-1)
        self.signed_sin = torch.cat([-angles.sin(), angles.sin()], dim=-1)
        self._copies.clear()  # made from the shorter table
        self._at = None

    def tables(self, end: int, device: torch.device, dtype: torch.dtype):
        """(cos, signed_sin) covering positions [0, end), on `device` in `dtype`."""
        if end > self.cos.shape[0]:
            self._grow(max(2 * end, 256))
        if (device, dtype) == _CPU32:
            return self.cos, self.signed_sin
        copy = self._copies.get((device, dtype))
        if copy is None:
            d = self.cos.shape[1]
            roll = torch.eye(d, device=device, dtype=dtype).roll(d // 2, dims=0)
            copy = self._copies[device, dtype] = (self.cos.to(device, dtype),
                                                  self.signed_sin.to(device, dtype), roll)
        return copy[0], copy[1]

    def matrix(self, position: int, like: torch.Tensor | None = None) -> torch.Tensor:
        """R with t·R = rope(t) at `position`, on the device and in the dtype of `like` (CPU
        float32 if None); kept: every layer asks for the same one."""
        key = (position, *((like.device, like.dtype) if like is not None else _CPU32))
        if self._at != key:
            cos, signed_sin = self.tables(position + 1, *key[1:])
            if key[1:] == _CPU32:
                d = cos.shape[1]
                roll = torch.eye(d).roll(d // 2, dims=0)  # t @ roll == t.roll(d // 2, dims=-1)
            else:
                roll = self._copies[key[1:]][2]
            # each entry is one of cos, ±sin or 0, so building it in any dtype is exact
            self._matrix = torch.diag(cos[position]) + roll * signed_sin[position]
            self._at = key
        return self._matrix

    def __call__(self, t: torch.Tensor, offset: int) -> torch.Tensor:
        """t [..., positions, head_dim] rotated for positions offset, offset + 1, …"""
        s = t.shape[-2]
        cos, signed_sin = self.tables(offset + s, t.device, t.dtype)
        cos, signed_sin = cos[offset:offset + s], signed_sin[offset:offset + s]
        return torch.addcmul(t * cos, t.roll(t.shape[-1] // 2, dims=-1), signed_sin)

"""The KV cache of one attention layer: why a decoded token costs one position, not the past."""
from __future__ import annotations

import torch


class LayerCache:
    """One layer's keys and values so far, in buffers allocated once for the whole generation.

    [batch, kv_heads, max_len, head_dim] each; `kv_heads` is the heads this module (or this
    tensor-parallel rank) holds. `append` writes new positions in place and returns views of
    everything so far, so a decoding step copies only its own key and value. `device` and
    `dtype` are the model's (CPU float32 by default): `Llama.new_cache` passes its weights'.
    """

    def __init__(self, batch: int, kv_heads: int, max_len: int, head_dim: int,
                 device=None, dtype: torch.dtype | None = None):
        self.k = torch.empty(batch, kv_heads, max_len, head_dim, device=device, dtype=dtype)
        self.v = torch.empty_like(self.k)
        self.length = 0

    def append(self, k, v):
        end = self.length + k.shape[2]
        if end > self.k.shape[2]:
            raise ValueError(f"KV cache full: {end} positions asked, room for {self.k.shape[2]}")
        self.k[:, :, self.length:end], self.v[:, :, self.length:end] = k, v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]

"""The course's real model, SmolLM2-135M: a Llama-architecture decoder built from `tplab.layers`.

    ids -> embedding -> 30 x Block[x + attn(norm(x)), x + mlp(norm(x))] -> norm -> head -> logits

RMSNorm, rotary position embeddings, grouped-query attention with a key/value cache, a SwiGLU
MLP (all in `tplab.layers`), and an LM head tied to the embedding. Generation is a prefill
(the whole prompt in one forward) then one forward per new token, each reading the cache
instead of recomputing the past. The attention and MLP modules are dense (`tplab.layers`) or
tensor-parallel (`tplab.tp`) — the model does not care which, and neither does this file:
`tplab/models/loading.py` decides.

Devices and dtypes: loading builds it on the CPU in float32; `model.to("cuda:0", torch.bfloat16)`
moves it whole (the fused weights follow, `tplab.layers.fuse`). What is not a weight follows
too: the rotary tables follow the input (`Rotary.tables`), the KV caches `new_cache` makes
and the ids `tplab.models.generate` makes follow the weights (`device`, `dtype`). The logits
come out in the weights' dtype (bf16 for a bf16 model); generation picks tokens in float32.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from tplab.layers import Block, LayerCache, RMSNorm, Rotary

__all__ = ["Config", "Llama", "Block", "LayerCache", "RMSNorm", "Rotary"]


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
        """Logits [batch, seq, vocab] (this rank's vocabulary columns when the head is split), in
        the weights' dtype; `ids` on the weights' device."""
        x = self.embed(ids)
        for i, block in enumerate(self.blocks):
            x = block(x, self.rope, cache[i] if cache is not None else None)
        return self.head(self.norm(x))

    @property
    def device(self) -> torch.device:
        """Where the weights are (as transformers' models say): generation's inputs follow."""
        return self.blocks[0].attn_norm.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype: the KV caches' too, and the logits'."""
        return self.blocks[0].attn_norm.weight.dtype

    def new_cache(self, batch: int, max_len: int) -> list[LayerCache]:
        """Empty caches sized for this rank's key/value heads, on the weights' device and dtype."""
        return [LayerCache(batch, block.attn.n_kv_heads, max_len, self.config.head_dim,
                           self.device, self.dtype) for block in self.blocks]

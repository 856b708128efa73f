"""The course's real model, SmolLM2-135M: a Llama-architecture decoder built from `tplab.layers`.

    ids -> embedding -> 30 x Block[x + attn(norm(x)), x + mlp(norm(x))] -> norm -> head -> logits

RMSNorm, rotary position embeddings, grouped-query attention with a key/value cache, a SwiGLU
MLP (all in `tplab.layers`), and an LM head tied to the embedding. Generation is a prefill
(the whole prompt in one forward) then one forward per new token, each reading the cache
instead of recomputing the past. The attention and MLP modules are dense (`tplab.layers`) or
tensor-parallel (`tplab.tp`) — the model does not care which, and neither does this file:
`tplab/models/loading.py` decides.
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
        """Logits [batch, seq, vocab] (this rank's vocabulary columns when the head is split)."""
        x = self.embed(ids)
        for i, block in enumerate(self.blocks):
            x = block(x, self.rope, cache[i] if cache is not None else None)
        return self.head(self.norm(x))

    def new_cache(self, batch: int, max_len: int) -> list[LayerCache]:
        """Empty caches sized for this rank's key/value heads."""
        return [LayerCache(batch, block.attn.n_kv_heads, max_len, self.config.head_dim)
                for block in self.blocks]

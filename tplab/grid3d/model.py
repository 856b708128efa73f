"""A small Llama, whole on one process or cut into this rank's piece of a dp × pp × tp grid.

The model is `tplab.layers`' vocabulary, nothing new: an embedding, pre-norm `Block`s of
grouped-query `Attention` (with rotary positions) and a `SwiGLU` MLP, a final `RMSNorm` and an
LM head. The head is *not* tied to the embedding (as in Llama 2 and 3): tied, the first and
the last pipeline stage would each hold a copy and would have to all-reduce its gradient
between them (Megatron-LM's "embedding group"), a fourth kind of traffic this lesson leaves out.

A rank's piece (`rank_stage`) is

* pp: the contiguous layers of its stage (`tplab.pp.split_layers`, equal counts), with the
  embedding on the first stage and the norm and head on the last;
* tp: each block's attention and MLP as `tplab.tp.ParallelAttention` / `ParallelSwiGLU` cut
  from the dense ones over its tp group (the embedding, the norms and the head are
  replicated over tp: their gradients come out the same on every tp rank, since the f
  operator all-reduces the gradient flowing back into each norm);
* dp: nothing: a replica holds the same piece as its dp peers.

Parameter names are the dense model's ("blocks.2.attn.q.weight"), so the pieces gathered
back (`gather_parameters`) compare with the single-process model name by name.
"""
from __future__ import annotations

import copy

import torch
import torch.distributed as dist
from torch import nn

from tplab.layers import Attention, Block, RMSNorm, Rotary, SwiGLU
from tplab.models.llama import Config
from tplab.pp import split_layers
from tplab.tp import ParallelAttention, ParallelSwiGLU

__all__ = ["Config", "TINY", "Stage", "dense_model", "stage_layers", "rank_stage",
           "gather_parameters", "SHARD_DIM"]


# the course model's Config (SmolLM2's shape by default), at a size 8 CPU ranks train in a second
TINY = Config(vocab_size=64, hidden=32, ffn=64, n_layers=4, n_heads=4, n_kv_heads=2, head_dim=8,
              rope_base=10000.0)


class Stage(nn.Module):
    """Layers `layers` of the model; the embedding if given (first stage), the final norm and
    head if given (last stage). The whole model is the one stage holding everything."""

    def __init__(self, config: Config, layers: range, blocks: list[Block], embed=None,
                 norm=None, head=None):
        super().__init__()
        self.layers = layers
        self.embed = embed
        self.blocks = nn.ModuleDict({str(i): b for i, b in zip(layers, blocks)})
        self.norm, self.head = norm, head
        self.rope = Rotary(config.head_dim, config.rope_base)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Token ids [b, s] (first stage) or hidden states [b, s, h] -> hidden states, or
        logits [b, s, vocab] on the last stage."""
        if self.embed is not None:
            x = self.embed(x)
        for block in self.blocks.values():
            x = block(x, self.rope)
        if self.head is not None:
            x = self.head(self.norm(x))
        return x


def dense_model(config: Config = TINY, seed: int = 0) -> Stage:
    """The whole model with seeded random weights: the same on every rank that builds it."""
    torch.manual_seed(seed)
    h = config.hidden
    embed = nn.Embedding(config.vocab_size, h)
    blocks = [Block(Attention(h, config.n_heads, config.n_kv_heads, config.head_dim),
                    SwiGLU(h, config.ffn), h, config.norm_eps) for _ in range(config.n_layers)]
    norm, head = RMSNorm(h, config.norm_eps), nn.Linear(h, config.vocab_size, bias=False)
    return Stage(config, range(config.n_layers), blocks, embed, norm, head)


def stage_layers(config: Config, pp: int) -> list[range]:
    """The layers of each of the pp stages: contiguous, equal counts (as equal as they go)."""
    return split_layers([1.0] * config.n_layers, pp)


def _check_tp(config: Config, tp: int) -> None:
    if not 1 <= tp <= config.n_kv_heads or config.n_kv_heads % tp:
        raise ValueError(f"tp={tp} must divide the {config.n_kv_heads} KV heads: beyond them "
                         f"KV heads would be replicated over tp ranks, and training would need "
                         f"their gradients summed too; choose tp from the divisors of "
                         f"{config.n_kv_heads}")


def _tp_block(block: Block, tp_group, config: Config) -> Block:
    """`block` with its attention and MLP cut to this rank's heads and features (dense at tp=1)."""
    if tp_group is None or dist.get_world_size(tp_group) == 1:
        return copy.deepcopy(block)
    cut = Block(ParallelAttention.from_dense(block.attn, tp_group),
                ParallelSwiGLU.from_dense(block.mlp, tp_group), config.hidden, config.norm_eps)
    cut.attn_norm.load_state_dict(block.attn_norm.state_dict())
    cut.mlp_norm.load_state_dict(block.mlp_norm.state_dict())
    return cut


def rank_stage(dense: Stage, config: Config, pp: int, stage: int, tp_group=None) -> Stage:
    """This rank's piece: stage `stage` of `pp`, its blocks tensor-parallel over `tp_group`."""
    _check_tp(config, 1 if tp_group is None else dist.get_world_size(tp_group))
    layers = stage_layers(config, pp)[stage]
    blocks = [_tp_block(dense.blocks[str(i)], tp_group, config) for i in layers]
    first, last = stage == 0, stage == pp - 1
    own = copy.deepcopy
    return Stage(config, layers, blocks, own(dense.embed) if first else None,
                 own(dense.norm) if last else None, own(dense.head) if last else None)


# the dimension along which tp ranks hold slices of a tensor, by the end of its name: rows of
# the column-parallel projections, columns of the row-parallel ones (tplab.tp.plan's slices)
SHARD_DIM = {"attn.q.weight": 0, "attn.k.weight": 0, "attn.v.weight": 0, "attn.o.weight": 1,
             "mlp.gate.weight": 0, "mlp.up.weight": 0, "mlp.down.weight": 1}


def _shard_dim(name: str) -> int | None:
    return next((d for end, d in SHARD_DIM.items() if name.endswith(end)), None)


def gather_parameters(stage: Stage, tp_group=None, pp_group=None) -> dict[str, torch.Tensor]:
    """The whole model's parameters, by the dense model's names, on every rank: the tp slices
    concatenated in rank order (each rank's slices are contiguous and in order while tp
    divides the KV heads), then the stages of the pipeline merged. Collective over both
    groups; object collectives, for checking, not for speed."""
    mine = {n: p.detach().clone() for n, p in stage.named_parameters()}
    if tp_group is not None and dist.get_world_size(tp_group) > 1:
        pieces = [None] * dist.get_world_size(tp_group)
        dist.all_gather_object(pieces, mine, group=tp_group)
        mine = {n: (t if _shard_dim(n) is None else
                    torch.cat([piece[n] for piece in pieces], dim=_shard_dim(n)))
                for n, t in mine.items()}
    if pp_group is not None and dist.get_world_size(pp_group) > 1:
        stages = [None] * dist.get_world_size(pp_group)
        dist.all_gather_object(stages, mine, group=pp_group)
        mine = {n: t for piece in stages for n, t in piece.items()}
    return mine

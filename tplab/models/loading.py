"""Build the course model from its GGUF file: whole on one device, or sharded over TP ranks.

Both builds read the file through one name table (`tplab.models.gguf_file.GGUF_NAMES`: the
model's module names to llama.cpp's tensor names) and take their slices from one plan
(`tplab.tp.plan.shard_plan`; one device is the plan for one rank, where every slice is whole).
The sharded build never holds the whole model: each rank asks the file for its own rows and
columns only (`GGUFModelFile.tensor(name, rows, cols)`), so its memory is its share. Modules
are made on the meta device first (no random initialisation, no memory) and then given the
file's weights.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from tplab.layers import Attention, Block, SwiGLU, TiedHead
from tplab.models.gguf_file import GGUFModelFile, gguf_name
from tplab.models.llama import Llama
from tplab.tp import (
    ColumnParallelLinear,
    ParallelAttention,
    ParallelSwiGLU,
    VocabParallelEmbedding,
    shard_plan,
)
from tplab.tp.plan import RankPlan, Slice


def _read(f: GGUFModelFile, part: str, layer: int | None, piece: Slice) -> torch.Tensor:
    return f.tensor(gguf_name(part, layer), rows=piece.rows, cols=piece.cols)  # frozen: no grad


def _p(tensor: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(tensor, requires_grad=False)


def _finish(model: Llama, f: GGUFModelFile, plan: RankPlan) -> Llama:
    """The norms (whole on every rank), then fusing for inference: q|k|v and gate|up."""
    for i, block in enumerate(model.blocks):
        for part in ("attn_norm", "mlp_norm"):
            block.get_submodule(part).weight = _p(_read(f, part, i, plan.layer[part]))
    model.norm.weight = _p(_read(f, "norm", None, plan.model["norm"]))
    for block in model.blocks:
        block.attn.fuse()
        block.mlp.fuse()
    return model.eval()


def load_llama(path=None) -> Llama:
    """The whole model on this process (float32)."""
    f = GGUFModelFile(path)
    c, plan = f.config, shard_plan(f.config, 1)[0]  # one rank: every slice whole
    with torch.device("meta"):
        blocks = [Block(Attention(c.hidden, c.n_heads, c.n_kv_heads, c.head_dim),
                        SwiGLU(c.hidden, c.ffn), c.hidden, c.norm_eps) for _ in range(c.n_layers)]
        model = Llama(c, nn.Embedding(c.vocab_size, c.hidden), blocks, None)
    for i, block in enumerate(model.blocks):
        for part in ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down"):
            block.get_submodule(part).weight = _p(_read(f, part, i, plan.layer[part]))
    model.embed.weight = _p(_read(f, "embed", None, plan.model["embed"]))
    model.head = TiedHead(model.embed.weight)
    return _finish(model, f, plan)


def load_llama_tp(group=None, path=None) -> Llama:
    """This rank's shard of the model, for a tensor-parallel group of any size from 1 to n_heads."""
    f = GGUFModelFile(path)
    c = f.config
    # a clear error for a degree that cannot work
    plan = shard_plan(c, dist.get_world_size(group))[dist.get_rank(group)]
    blocks = []
    for i in range(c.n_layers):
        attn = {k: _read(f, f"attn.{k}", i, plan.layer[f"attn.{k}"]) for k in ("q", "k", "v", "o")}
        mlp = {k: _read(f, f"mlp.{k}", i, plan.layer[f"mlp.{k}"]) for k in ("gate", "up", "down")}
        attn = ParallelAttention.from_shards(attn, plan.attention, group)
        mlp = ParallelSwiGLU.from_shards(mlp, plan.mlp, group)
        with torch.device("meta"):
            blocks.append(Block(attn, mlp, c.hidden, c.norm_eps))
    rows = _p(_read(f, "embed", None, plan.model["embed"]))
    embed = VocabParallelEmbedding(rows, plan.vocab[0], group)
    # tied to the embedding; its logits stay this rank's (never gathered)
    head = ColumnParallelLinear(embed.weight, None, list(plan.vocab_sizes), group)
    with torch.device("meta"):
        model = Llama(c, embed, blocks, head)
    return _finish(model, f, plan)


def parameter_bytes(model: nn.Module) -> int:
    """Bytes of this process's parameters, a tied weight counted once."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def vocab_start(model: Llama) -> int:
    """The first token id whose logit this rank computes (0 unless the head is vocab-parallel)."""
    return getattr(model.embed, "start", 0)

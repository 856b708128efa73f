"""Build the course model from its GGUF file: whole on one device, or sharded over TP ranks.

Both builds read the file through one name table (`tplab.models.gguf_file.GGUF_NAMES`: the
model's module names to llama.cpp's tensor names) and take their slices from one plan
(`tplab.tp.plan.shard_plan`; one device is the plan for one rank, where every slice is whole).
The sharded build never holds the whole model: each rank asks the file for its own rows and
columns only (`GGUFModelFile.tensor(name, rows, cols)`), so its memory is its share. Modules
are made on the meta device first (no random initialisation, no memory) and then given the
file's weights.

A pipeline stage (`layers=`, lesson 05) is the same model cut between layers: it holds the
blocks in `layers`, the embedding only if it starts at layer 0, the final norm and the tied
head only if it ends at the last layer (the last stage reads the embedding's matrix from the
file for its head, so no middle stage holds it). Its missing ends are identities, so a stage
is still a `Llama`: its forward takes token ids (first stage) or hidden states (the others)
and returns hidden states, or logits on the last stage; its cache covers its own layers.
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


def _open(path) -> GGUFModelFile:
    """`path` may be a file already opened (reopening costs ~10 ms; an opened one is reused)."""
    return path if isinstance(path, GGUFModelFile) else GGUFModelFile(path)


def _layers(f: GGUFModelFile, layers: range | None) -> range:
    """The layers to hold: all of them by default; a contiguous, non-empty range otherwise."""
    n = f.config.n_layers
    if layers is None:
        return range(n)
    if not (isinstance(layers, range) and layers.step == 1
            and 0 <= layers.start < layers.stop <= n):
        raise ValueError(f"layers must be a non-empty range(start, stop) within range(0, {n}), "
                         f"got {layers!r}")
    return layers


def _finish(model: Llama, f: GGUFModelFile, plan: RankPlan, layers: range) -> Llama:
    """The norms (whole on every rank), then fusing for inference: q|k|v and gate|up.
    A stage without the last layer gets no final norm (an identity: it passes hidden states)."""
    for i, block in zip(layers, model.blocks):
        for part in ("attn_norm", "mlp_norm"):
            block.get_submodule(part).weight = _p(_read(f, part, i, plan.layer[part]))
    if layers.stop == f.config.n_layers:
        model.norm.weight = _p(_read(f, "norm", None, plan.model["norm"]))
    else:
        model.norm = nn.Identity()
    model.layers = layers
    for block in model.blocks:
        block.attn.fuse()
        block.mlp.fuse()
    return model.eval()


def load_llama(path=None, layers: range | None = None) -> Llama:
    """The whole model on this process (float32), or the pipeline stage holding `layers`.
    `path`: the GGUF file (found if None), or a `GGUFModelFile` already open."""
    f = _open(path)
    c, plan = f.config, shard_plan(f.config, 1)[0]  # one rank: every slice whole
    layers = _layers(f, layers)
    with torch.device("meta"):
        blocks = [Block(Attention(c.hidden, c.n_heads, c.n_kv_heads, c.head_dim),
                        SwiGLU(c.hidden, c.ffn), c.hidden, c.norm_eps) for _ in layers]
        model = Llama(c, nn.Identity(), blocks, nn.Identity())
    for i, block in zip(layers, model.blocks):
        for part in ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down"):
            block.get_submodule(part).weight = _p(_read(f, part, i, plan.layer[part]))
    first, last = layers.start == 0, layers.stop == c.n_layers
    weight = _p(_read(f, "embed", None, plan.model["embed"])) if first or last else None
    if first:
        # built around the file's weight: an nn.Embedding made empty would initialise itself
        # (normal_), and on the meta device that imports torch._dynamo, seconds, to do nothing
        model.embed = nn.Embedding(c.vocab_size, c.hidden, _weight=weight, _freeze=True)
        model.embed.weight = weight  # the very parameter the head shares
    if last:
        model.head = TiedHead(weight)
    return _finish(model, f, plan, layers)


def load_llama_tp(group=None, path=None, layers: range | None = None) -> Llama:
    """This rank's shard of the model, for a tensor-parallel group of any size from 1 to n_heads;
    of the pipeline stage holding `layers` if given (the group is then that stage's ranks)."""
    f = _open(path)
    c = f.config
    # a clear error for a degree that cannot work
    plan = shard_plan(c, dist.get_world_size(group))[dist.get_rank(group)]
    layers = _layers(f, layers)
    blocks = []
    for i in layers:
        attn = {k: _read(f, f"attn.{k}", i, plan.layer[f"attn.{k}"]) for k in ("q", "k", "v", "o")}
        mlp = {k: _read(f, f"mlp.{k}", i, plan.layer[f"mlp.{k}"]) for k in ("gate", "up", "down")}
        attn = ParallelAttention.from_shards(attn, plan.attention, group)
        mlp = ParallelSwiGLU.from_shards(mlp, plan.mlp, group)
        with torch.device("meta"):
            blocks.append(Block(attn, mlp, c.hidden, c.norm_eps))
    first, last = layers.start == 0, layers.stop == c.n_layers
    embed, head = nn.Identity(), nn.Identity()
    if first or last:
        rows = _p(_read(f, "embed", None, plan.model["embed"]))
        if first:
            embed = VocabParallelEmbedding(rows, plan.vocab[0], group)
        if last:
            # tied to the embedding; its logits stay this rank's (never gathered)
            head = ColumnParallelLinear(rows, None, list(plan.vocab_sizes), group)
            head.start = plan.vocab[0]  # the first token id of this rank's logits
    with torch.device("meta"):
        model = Llama(c, embed, blocks, head)
    return _finish(model, f, plan, layers)


def parameter_bytes(model: nn.Module) -> int:
    """Bytes of this process's parameters, a tied weight counted once."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def vocab_start(model: Llama) -> int:
    """The first token id whose logit this rank computes (0 unless the head is vocab-parallel)."""
    return getattr(model.embed, "start", getattr(model.head, "start", 0))

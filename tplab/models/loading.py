"""Build the course model from its GGUF file: whole on one device, or sharded for tensor parallelism.

The sharded build never holds the whole model: each rank asks the file for its own rows
and columns only (`GGUFModelFile.tensor(name, rows, cols)`), so its memory is its share.
Modules are made on the meta device first (no random initialisation, no memory) and
then given the file's weights.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from tplab.layers import Attention, SwiGLU, TiedHead
from tplab.models.gguf_file import GGUFModelFile
from tplab.models.llama import Block, Llama
from tplab.tp import (ColumnParallelLinear, ParallelAttention, ParallelSwiGLU, RowParallelLinear,
                      VocabParallelEmbedding, head_plan, shard_range, shard_sizes)


def _p(tensor: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(tensor, requires_grad=False)


def _finish(model: Llama, f: GGUFModelFile) -> Llama:
    for i, block in enumerate(model.blocks):
        block.attn_norm.weight = _p(f.tensor(f"blk.{i}.attn_norm.weight"))
        block.mlp_norm.weight = _p(f.tensor(f"blk.{i}.ffn_norm.weight"))
    model.norm.weight = _p(f.tensor("output_norm.weight"))
    for block in model.blocks:  # inference: q/k/v and gate/up as one product each
        block.attn.fuse()
        block.mlp.fuse()
    return model.eval()


def load_llama(path=None) -> Llama:
    """The whole model on this process (float32)."""
    f = GGUFModelFile(path)
    c = f.config
    with torch.device("meta"):
        embed = nn.Embedding(c.vocab_size, c.hidden)
        blocks = [Block(Attention(c.hidden, c.n_heads, c.n_kv_heads, c.head_dim), SwiGLU(c.hidden, c.ffn), c)
                  for _ in range(c.n_layers)]
        model = Llama(c, embed, blocks, None)
    embed.weight = _p(f.tensor("token_embd.weight"))
    model.head = TiedHead(embed.weight)
    for i, block in enumerate(model.blocks):
        a, m = block.attn, block.mlp
        for name, key in (("q", "attn_q"), ("k", "attn_k"), ("v", "attn_v"), ("o", "attn_output")):
            getattr(a, name).weight = _p(f.tensor(f"blk.{i}.{key}.weight"))
        for name, key in (("gate", "ffn_gate"), ("up", "ffn_up"), ("down", "ffn_down")):
            getattr(m, name).weight = _p(f.tensor(f"blk.{i}.{key}.weight"))
    return _finish(model, f)


def load_llama_tp(group=None, path=None) -> Llama:
    """This rank's shard of the model, for a tensor-parallel group of any size from 1 to n_heads."""
    f = GGUFModelFile(path)
    c, d = f.config, f.config.head_dim
    n, rank = dist.get_world_size(group), dist.get_rank(group)
    plans = head_plan(c.n_heads, c.n_kv_heads, n)  # raises a clear error for a degree that cannot work
    (q0, q1), (kv0, kv1) = plans[rank]["q"], plans[rank]["kv"]
    q_sizes = [(p["q"][1] - p["q"][0]) * d for p in plans]
    # FFN features evenly: at TP 2 the heads are uneven (6 + 3), but an all-reduce follows the
    # attention block and another the MLP, so each block's time is its slowest rank's: moving
    # FFN work onto the rank with fewer heads would only make the MLP's slowest rank slower.
    ffn_sizes, vocab_sizes = shard_sizes(c.ffn, n), shard_sizes(c.vocab_size, n)
    f0, f1 = shard_range(c.ffn, n, rank, ffn_sizes)
    v0, v1 = shard_range(c.vocab_size, n, rank)

    def column(key, rows, sizes):
        return ColumnParallelLinear(_p(f.tensor(key, rows=rows)), None, sizes, group, copy_input=False)

    blocks = []
    kv_of_head = torch.arange(q0, q1) // (c.n_heads // c.n_kv_heads) - kv0
    for i in range(c.n_layers):
        kv_rows, kv_width = (kv0 * d, kv1 * d), [(kv1 - kv0) * d]
        attn = ParallelAttention(
            column(f"blk.{i}.attn_q.weight", (q0 * d, q1 * d), q_sizes),
            column(f"blk.{i}.attn_k.weight", kv_rows, kv_width),
            column(f"blk.{i}.attn_v.weight", kv_rows, kv_width),
            RowParallelLinear(_p(f.tensor(f"blk.{i}.attn_output.weight", cols=(q0 * d, q1 * d))), None, q_sizes, group),
            kv_of_head, d, group)
        mlp = ParallelSwiGLU(
            column(f"blk.{i}.ffn_gate.weight", (f0, f1), ffn_sizes),
            column(f"blk.{i}.ffn_up.weight", (f0, f1), ffn_sizes),
            RowParallelLinear(_p(f.tensor(f"blk.{i}.ffn_down.weight", cols=(f0, f1))), None, ffn_sizes, group),
            group)
        with torch.device("meta"):
            block = Block(attn, mlp, c)
        blocks.append(block)
    embed = VocabParallelEmbedding(_p(f.tensor("token_embd.weight", rows=(v0, v1))), v0, group)
    head = ColumnParallelLinear(embed.weight, None, vocab_sizes, group)  # tied; local logits, not gathered
    with torch.device("meta"):
        model = Llama(c, embed, blocks, head)
    return _finish(model, f)


def parameter_bytes(model: nn.Module) -> int:
    """Bytes of this process's parameters, a tied weight counted once."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def vocab_start(model: Llama) -> int:
    """The first token id whose logit this rank computes (0 unless the head is vocab-parallel)."""
    return getattr(model.embed, "start", 0)

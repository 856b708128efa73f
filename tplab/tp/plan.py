"""The sharding plan: for a model and a tensor-parallel degree, what every rank holds.

One place answers "which rows and columns of which tensor does rank r keep, and which KV head
does each of its query heads read": the loader (`tplab.models.loading`) reads exactly those
slices from the file, `from_dense` (`tplab.tp.blocks`) cuts them from a dense module,
`tplab.viz.decode.rank_bytes` adds them up, and the pictures of `tplab.viz` draw them. Its
head map is the dense one of grouped-query attention (`tplab.layers.heads.kv_of_heads`, which
the dense `Attention` uses too) divided among the ranks.

    head_plan          per rank: query heads [q0, q1) and the KV heads [kv0, kv1) they read
    attention_shards   per rank: its slices of q, k, v, o and its query-to-KV head map
    mlp_shards         per rank: its slices of gate, up, down (FFN features)
    shard_plan         per rank: all of that for a whole model, plus the vocabulary range

Slices are of torch's [out, in] layout: a column-parallel layer keeps rows, a row-parallel
layer columns. Tensors are named as the model's modules are ("attn.q", "mlp.down", "embed").
"""
from __future__ import annotations

import dataclasses
import math

import torch

from tplab.checks.forbid import guard  # exercise 04.1's check hides the plan, even reloaded
from tplab.layers.heads import kv_of_heads
from tplab.tp.split import shard_range, shard_sizes

Range = tuple[int, int]


def head_plan(n_heads: int, n_kv_heads: int, parts: int) -> list[dict]:
    """Per rank: its query heads [q0, q1) and the key/value heads [kv0, kv1) they read.

    Up to `n_kv_heads` ranks: whole KV groups are divided (uneven allowed), nothing is
    replicated. Beyond that, query heads are divided and each rank keeps a copy of the
    KV heads its query heads read (KV heads replicated).
    """
    guard("tplab.tp.plan.head_plan")
    kv_of = kv_of_heads(n_heads, n_kv_heads)  # the dense map: query head j reads KV head kv_of[j]
    if not 1 <= parts <= n_heads:
        raise ValueError(f"tensor-parallel degree {parts} does not fit {n_heads} attention heads: "
                         f"use a degree from 1 to {n_heads} (each rank needs at least one head)")
    plan = []
    for rank in range(parts):
        if parts <= n_kv_heads:  # whole KV groups: the query heads that read them
            kv0, kv1 = shard_range(n_kv_heads, parts, rank)
            reads = ((kv_of >= kv0) & (kv_of < kv1)).nonzero().flatten()
            q0, q1 = int(reads[0]), int(reads[-1]) + 1
        else:  # query heads: the KV heads they read
            q0, q1 = shard_range(n_heads, parts, rank)
            kv0, kv1 = int(kv_of[q0]), int(kv_of[q1 - 1]) + 1
        plan.append({"q": (q0, q1), "kv": (kv0, kv1)})
    return plan


@dataclasses.dataclass(frozen=True)
class Slice:
    """Rows [r0, r1) and columns [c0, c1) of a tensor; None: all of them."""
    rows: Range | None = None
    cols: Range | None = None

    def of(self, tensor: torch.Tensor) -> torch.Tensor:
        """This block of a whole tensor (a view). A bias (1-D) follows the rows: cut by a row
        slice, whole beside a column slice (a row-parallel layer adds its bias once, whole)."""
        if self.rows is not None:
            tensor = tensor[self.rows[0]:self.rows[1]]
        if self.cols is not None and tensor.dim() == 2:
            tensor = tensor[:, self.cols[0]:self.cols[1]]
        return tensor

    def numel(self, shape: tuple[int, ...]) -> int:
        """Elements of this block of a tensor of `shape`."""
        sizes = list(shape)
        for dim, span in enumerate((self.rows, self.cols)):
            if span is not None:
                sizes[dim] = span[1] - span[0]
        return math.prod(sizes)


@dataclasses.dataclass(frozen=True)
class AttentionShard:
    """One rank's attention heads, and the slices of the four projections they need."""
    q_heads: Range            # [q0, q1): its query heads
    kv_heads: Range           # [kv0, kv1): the KV heads they read (other ranks may hold them too)
    kv_of_head: tuple         # its query head j reads its KV head kv_of_head[j] (local numbers)
    head_dim: int
    q_sizes: tuple            # every rank's query features: the widths the o all-reduce sums over

    @property
    def slices(self) -> dict[str, Slice]:
        d, (q0, q1), (kv0, kv1) = self.head_dim, self.q_heads, self.kv_heads
        q, kv = (q0 * d, q1 * d), (kv0 * d, kv1 * d)
        return {"q": Slice(rows=q), "k": Slice(rows=kv), "v": Slice(rows=kv), "o": Slice(cols=q)}

    def head_map(self) -> torch.Tensor:
        return torch.tensor(self.kv_of_head, dtype=torch.int64)


def attention_shards(n_heads: int, n_kv_heads: int, head_dim: int,
                     parts: int) -> list[AttentionShard]:
    """Per rank: its heads (`head_plan`) as slices of W_q, W_k, W_v (rows) and W_o (columns)."""
    guard("tplab.tp.plan.attention_shards")
    plans, kv_of = head_plan(n_heads, n_kv_heads, parts), kv_of_heads(n_heads, n_kv_heads)
    q_sizes = tuple((p["q"][1] - p["q"][0]) * head_dim for p in plans)
    # a rank's map is its query heads' part of the dense one, numbered from its first KV head
    local = [tuple((kv_of[slice(*p["q"])] - p["kv"][0]).tolist()) for p in plans]
    return [AttentionShard(p["q"], p["kv"], m, head_dim, q_sizes) for p, m in zip(plans, local)]


@dataclasses.dataclass(frozen=True)
class MLPShard:
    """One rank's FFN features: rows of gate and up (column-parallel), columns of down (row-)."""
    features: Range
    sizes: tuple              # every rank's feature count

    @property
    def slices(self) -> dict[str, Slice]:
        return {"gate": Slice(rows=self.features), "up": Slice(rows=self.features),
                "down": Slice(cols=self.features)}


def mlp_shards(ffn: int, parts: int) -> list[MLPShard]:
    """FFN features split evenly, even when the heads are not (TP 2: 6 + 3 heads).

    An all-reduce ends the attention block and another the MLP, so each block takes its
    slowest rank's time: moving FFN work onto the rank with fewer heads would only make the
    MLP's slowest rank slower.
    """
    sizes = tuple(shard_sizes(ffn, parts))
    return [MLPShard(shard_range(ffn, parts, r, list(sizes)), sizes) for r in range(parts)]


@dataclasses.dataclass(frozen=True)
class RankPlan:
    """Everything one rank of a tensor-parallel model holds (every layer alike)."""
    rank: int
    attention: AttentionShard
    mlp: MLPShard
    vocab: Range              # its token ids: rows of the embedding, tied to the LM head
    vocab_sizes: tuple

    @property
    def layer(self) -> dict[str, Slice]:
        """Slices of one layer's tensors, by module name; the norms whole."""
        return {**{f"attn.{k}": s for k, s in self.attention.slices.items()},
                **{f"mlp.{k}": s for k, s in self.mlp.slices.items()},
                "attn_norm": Slice(), "mlp_norm": Slice()}

    @property
    def model(self) -> dict[str, Slice]:
        """Slices of the tensors outside the layers: the embedding (= LM head), the final norm."""
        return {"embed": Slice(rows=self.vocab), "norm": Slice()}

    def numel(self, config) -> int:
        """Parameters this rank holds (the tied embedding and LM head counted once)."""
        shapes = tensor_shapes(config)
        return (config.n_layers * sum(s.numel(shapes[k]) for k, s in self.layer.items())
                + sum(s.numel(shapes[k]) for k, s in self.model.items()))


def tensor_shapes(config) -> dict[str, tuple[int, ...]]:
    """The whole shape of every tensor the plan slices, in torch's [out, in] layout."""
    h, q, kv = config.hidden, config.n_heads * config.head_dim, config.n_kv_heads * config.head_dim
    return {"attn.q": (q, h), "attn.k": (kv, h), "attn.v": (kv, h), "attn.o": (h, q),
            "mlp.gate": (config.ffn, h), "mlp.up": (config.ffn, h), "mlp.down": (h, config.ffn),
            "attn_norm": (h,), "mlp_norm": (h,), "embed": (config.vocab_size, h), "norm": (h,)}


def shard_plan(config, parts: int) -> list[RankPlan]:
    """Per rank of `parts`: what it holds of a model with this config (SmolLM2's `Config`, or
    any object with n_heads, n_kv_heads, head_dim, hidden, ffn, vocab_size, n_layers)."""
    guard("tplab.tp.plan.shard_plan")
    heads = attention_shards(config.n_heads, config.n_kv_heads, config.head_dim, parts)
    mlps = mlp_shards(config.ffn, parts)
    vocab_sizes = tuple(shard_sizes(config.vocab_size, parts))
    vocab = [shard_range(config.vocab_size, parts, r, list(vocab_sizes)) for r in range(parts)]
    return [RankPlan(r, heads[r], mlps[r], vocab[r], vocab_sizes) for r in range(parts)]

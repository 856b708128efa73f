"""Tensor parallelism (Megatron-style): the dense layers of `tplab.layers`, split across ranks.

    ops.py     the conjugate communication ops f and g, and gather/split, as autograd functions
    split.py   how one dimension is divided (uneven shares allowed)
    plan.py    the sharding plan: per rank, its slices of every tensor and its query-to-KV head map
    linear.py  ColumnParallelLinear, RowParallelLinear
    blocks.py  ParallelSwiGLU, ParallelAttention: tplab.layers' SwiGLU, Attention, sliced, f/g added
    vocab.py   VocabParallelEmbedding, vocab_parallel_cross_entropy
"""
from tplab.tp.blocks import ParallelAttention, ParallelSwiGLU
from tplab.tp.linear import ColumnParallelLinear, RowParallelLinear
from tplab.tp.ops import (
    copy_to_parallel,
    gather_from_parallel,
    reduce_from_parallel,
    split_to_parallel,
)
from tplab.tp.plan import (
    RankPlan,
    Slice,
    attention_shards,
    head_plan,
    mlp_shards,
    shard_plan,
    tensor_shapes,
)
from tplab.tp.split import shard_range, shard_sizes
from tplab.tp.vocab import VocabParallelEmbedding, vocab_parallel_cross_entropy

__all__ = [
    "copy_to_parallel", "reduce_from_parallel", "gather_from_parallel", "split_to_parallel",
    "ColumnParallelLinear", "RowParallelLinear", "ParallelSwiGLU", "ParallelAttention",
    "VocabParallelEmbedding", "vocab_parallel_cross_entropy", "shard_sizes", "shard_range",
    "head_plan", "attention_shards", "mlp_shards", "shard_plan", "tensor_shapes", "RankPlan",
    "Slice",
]

"""Tensor parallelism (Megatron-style): layers that are exactly the dense layer, split across ranks.

    ops.py     the conjugate communication ops f and g, and gather/split, as autograd functions
    split.py   who holds which rows, columns and heads (uneven shares allowed)
    linear.py  ColumnParallelLinear, RowParallelLinear
    blocks.py  ParallelSwiGLU, ParallelAttention (GQA, KV groups split or replicated)
    vocab.py   VocabParallelEmbedding, vocab_parallel_cross_entropy
"""
from tplab.tp.blocks import ParallelAttention, ParallelSwiGLU
from tplab.tp.linear import ColumnParallelLinear, RowParallelLinear
from tplab.tp.ops import copy_to_parallel, gather_from_parallel, reduce_from_parallel, split_to_parallel
from tplab.tp.split import head_plan, shard_range, shard_sizes
from tplab.tp.vocab import VocabParallelEmbedding, vocab_parallel_cross_entropy

__all__ = [
    "copy_to_parallel", "reduce_from_parallel", "gather_from_parallel", "split_to_parallel",
    "ColumnParallelLinear", "RowParallelLinear", "ParallelSwiGLU", "ParallelAttention",
    "VocabParallelEmbedding", "vocab_parallel_cross_entropy", "shard_sizes", "shard_range", "head_plan",
]

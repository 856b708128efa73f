"""The dense building blocks of a Llama-style decoder, each written once.

    rotary.py     Rotary: rotary position embeddings (and the one-position matrix decoding uses)
    cache.py      LayerCache: one layer's keys and values so far
    fuse.py       fuse_weights, project: several projections of one input as one matrix product
    heads.py      kv_of_heads: which KV head each query head reads (the sharding plan's too)
    attention.py  attend, attend_one, query_groups, Attention (grouped-query, with a KV cache)
    mlp.py        SwiGLU
    block.py      RMSNorm, Block (pre-norm attention + MLP with residuals), TiedHead

Why one place: the tensor-parallel versions in `tplab/tp/` are these same classes with sliced
weights and the f/g communication added (`tplab.tp.blocks` subclasses them), the course model
(`tplab.models.llama`) is assembled from them, and so are the small models of later lessons.
Shapes: x is [batch, seq, hidden].
"""
from tplab.layers.attention import Attention, attend, attend_one, query_groups
from tplab.layers.block import Block, RMSNorm, TiedHead
from tplab.layers.cache import LayerCache
from tplab.layers.fuse import fuse_weights, project
from tplab.layers.heads import kv_of_heads
from tplab.layers.mlp import SwiGLU
from tplab.layers.rotary import Rotary

__all__ = ["Attention", "attend", "attend_one", "kv_of_heads", "query_groups", "Block", "RMSNorm",
           "TiedHead", "LayerCache", "fuse_weights", "project", "SwiGLU", "Rotary"]

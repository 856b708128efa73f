"""Which key/value head each query head reads: grouped-query attention's head map, written once.

Query heads come in groups of n_heads / n_kv_heads, and group g reads KV head g. The dense
`Attention` takes the whole map; the sharding plan (`tplab.tp.plan`) divides the query heads
among ranks and gives each rank its part of this same map, renumbered from its first KV head.

Why here and not in tplab/tp/plan.py: `tplab.tp` builds on `tplab.layers` (its blocks subclass
these), so a module of `tplab.layers` cannot import `tplab.tp` without a cycle; the plan imports
this instead.
"""
from __future__ import annotations

import torch


def kv_of_heads(n_heads: int, n_kv_heads: int) -> torch.Tensor:
    """The KV head each of the n_heads query heads reads: [0, 0, 0, 1, 1, 1, …] (on the CPU,
    even under a meta device: it indexes, it is not a weight)."""
    if n_heads % n_kv_heads:
        raise ValueError(f"{n_heads} query heads cannot be grouped over {n_kv_heads} KV heads")
    return torch.arange(n_heads, device="cpu") // (n_heads // n_kv_heads)

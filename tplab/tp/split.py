"""Who holds what: how a dimension, and attention heads, are divided among tensor-parallel ranks.

Sizes may be uneven (differing by at most one): a row-parallel all-reduce does not
care how big each rank's share is, so nothing forces the degree to divide the size.
"""
from __future__ import annotations


def shard_sizes(total: int, parts: int) -> list[int]:
    """[total // parts + 1] * (total % parts) + [total // parts] * the rest."""
    if parts < 1:
        raise ValueError(f"tensor-parallel degree must be >= 1, got {parts}")
    base, extra = divmod(total, parts)
    return [base + (1 if r < extra else 0) for r in range(parts)]


def shard_range(total: int, parts: int, rank: int, sizes: list[int] | None = None) -> tuple[int, int]:
    """[start, end) of `rank`'s share of `total` (even shares, or the given `sizes`)."""
    if sizes is not None and (len(sizes) != parts or sum(sizes) != total):
        raise ValueError(f"shard sizes {sizes} must be {parts} numbers adding up to {total}")
    sizes = sizes or shard_sizes(total, parts)
    start = sum(sizes[:rank])
    return start, start + sizes[rank]


def head_plan(n_heads: int, n_kv_heads: int, parts: int) -> list[dict]:
    """Per rank: its query heads [q0, q1) and the key/value heads [kv0, kv1) they read.

    Up to `n_kv_heads` ranks: whole KV groups are divided (uneven allowed), nothing is
    replicated. Beyond that, query heads are divided and each rank keeps a copy of the
    KV heads its query heads read (KV heads replicated).
    """
    if n_heads % n_kv_heads:
        raise ValueError(f"{n_heads} query heads cannot be grouped over {n_kv_heads} KV heads")
    if not 1 <= parts <= n_heads:
        raise ValueError(f"tensor-parallel degree {parts} does not fit {n_heads} attention heads: "
                         f"use a degree from 1 to {n_heads} (each rank needs at least one head)")
    group = n_heads // n_kv_heads
    plan = []
    for rank in range(parts):
        if parts <= n_kv_heads:
            kv0, kv1 = shard_range(n_kv_heads, parts, rank)
            q0, q1 = kv0 * group, kv1 * group
        else:
            q0, q1 = shard_range(n_heads, parts, rank)
            kv0, kv1 = q0 // group, (q1 - 1) // group + 1
        plan.append({"q": (q0, q1), "kv": (kv0, kv1)})
    return plan

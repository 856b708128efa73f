"""How a dimension is divided among tensor-parallel ranks (the heads: `tplab.tp.plan`).

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


def shard_range(total: int, parts: int, rank: int,
                sizes: list[int] | None = None) -> tuple[int, int]:
    """[start, end) of `rank`'s share of `total` (even shares, or the given `sizes`)."""
    if sizes is not None and (len(sizes) != parts or sum(sizes) != total):
        raise ValueError(f"shard sizes {sizes} must be {parts} numbers adding up to {total}")
    sizes = sizes or shard_sizes(total, parts)
    start = sum(sizes[:rank])
    return start, start + sizes[rank]

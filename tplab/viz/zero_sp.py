"""Lesson 07's pictures of ZeRO: where each rank's bytes of model state go at each stage
(Rajbhandari et al. 2020's Figure 1, from `tplab.zero.zero_memory_bytes`), and the optimizer
state each rank measurably holds (ZeRO-1's equal slices beside ZeroRedundancyOptimizer's whole
parameters). Sequence parallelism's activation bytes: `tplab.viz.tp_memory` (its "sp" line)."""
from __future__ import annotations

import matplotlib.pyplot as plt

from tplab.zero import zero_memory_bytes

__all__ = ["draw_zero_stages", "draw_optimizer_state"]

PARTS = (("parameters", "C0"), ("gradients", "C1"), ("optimizer state", "C2"))
STAGES = ("DP", "ZeRO-1\n(optimizer)", "ZeRO-2\n(+ gradients)", "ZeRO-3\n(+ parameters)")


def _parts(psi: float, n: int, stage: int, k: float) -> list[float]:
    """Bytes per rank of parameters, gradients and optimizer state (2, 2 and k per parameter)."""
    whole = zero_memory_bytes(psi, n, stage, k=k)
    optim = whole - zero_memory_bytes(psi, n, stage, k=0)
    grads = zero_memory_bytes(psi, n, stage, k=0, bytes_param=0)
    return [whole - optim - grads, grads, optim]


def draw_zero_stages(psi: float, n: int, k: float = 12):
    """Stacked bars, GB (decimal) per rank, for ZeRO stages 0-3 of `psi` parameters on `n`
    ranks (mixed-precision Adam: 2 + 2 + k bytes per parameter), each bar labelled."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    bottoms = [0.0] * 4
    for i, (label, color) in enumerate(PARTS):
        heights = [_parts(psi, n, stage, k)[i] / 1e9 for stage in range(4)]
        ax.bar(range(4), heights, bottom=bottoms, color=color, label=label)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    for x, total in enumerate(bottoms):
        ax.annotate(f"{total:.1f} GB", (x, total), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(4), STAGES, fontsize=8)
    ax.margins(y=0.12)
    ax.set(ylabel="GB per rank", title=f"model state of {psi / 1e9:g}B parameters on {n} ranks")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def draw_optimizer_state(per_rank: dict[str, list[int]], whole: int):
    """Grouped bars: optimizer-state bytes on each rank for each optimizer in `per_rank`
    ({name: [bytes of rank 0, rank 1, ...]}), against `whole`/N (dotted) and `whole` (dashed),
    the state of one process holding everything."""
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    names = list(per_rank)
    n = len(per_rank[names[0]])
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        ax.bar([r + (i - (len(names) - 1) / 2) * width for r in range(n)], per_rank[name],
               width, label=name)
    ax.axhline(whole / n, color="k", ls=":", lw=1, label=f"one process / {n}")
    ax.axhline(whole, color="k", ls="--", lw=1, label="one process")
    ax.set_xticks(range(n), [f"rank {r}" for r in range(n)])
    ax.set(ylabel="bytes of optimizer state", title="who holds the optimizer's state")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig

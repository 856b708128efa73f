"""Lesson 07: where each rank sits in a dp × pp × tp grid, and which ranks form each group.

One block per pipeline stage, left to right; inside it a table with one row per data-parallel
replica and one column per tensor-parallel shard, so a tp group is a row, a dp group a column
of one block, and a pp group the same cell in every block. `highlight` colours the groups of
one dimension (each group its colour, named in the legend with the collective it carries).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from tplab.mesh import DIMS, Grid
from tplab.viz.ranks import RANK_COLORS

__all__ = ["plot_grid", "CARRIES"]

CARRIES = {"tp": "all-reduce per layer, per micro-batch",
           "pp": "send/recv per micro-batch, per stage boundary",
           "dp": "gradient all-reduce per step"}
_GAP = 0.6  # between pipeline blocks, in cells


def plot_grid(grid: Grid, highlight: str | None = None, ax=None):
    """Every rank of `grid` as a cell labelled with its number and (pp, dp, tp) place;
    highlight="tp", "dp" or "pp" colours that dimension's groups. Returns the figure."""
    if highlight is not None and highlight not in DIMS:
        raise ValueError(f"highlight must be None or one of {', '.join(DIMS)}, not {highlight!r}")
    if ax is None:
        width = grid.pp * (grid.tp + _GAP) + 0.8
        _, ax = plt.subplots(figsize=(min(1.2 * width + 1.5, 14), 1.0 * grid.dp + 1.8))
    groups = grid.groups(highlight) if highlight else []
    group_of = {r: i for i, g in enumerate(groups) for r in g}
    centres = {}
    for rank in range(grid.world):
        pp, dp, tp = grid.coords(rank)
        x, y = pp * (grid.tp + _GAP) + tp, grid.dp - 1 - dp
        color = RANK_COLORS[group_of[rank] % len(RANK_COLORS)] if highlight else "#dde3ea"
        ax.add_patch(Rectangle((x, y), 0.94, 0.9, fc=color, ec="black", lw=1, alpha=0.85))
        ax.text(x + 0.47, y + 0.55, f"rank {rank}", ha="center", va="center", fontsize=9,
                weight="bold")
        ax.text(x + 0.47, y + 0.25, f"pp{pp} dp{dp} tp{tp}", ha="center", va="center",
                fontsize=7)
        centres[rank] = (x + 0.47, y + 0.45)
    for pp in range(grid.pp):  # the stage's block
        x0 = pp * (grid.tp + _GAP) - 0.08
        ax.add_patch(Rectangle((x0, -0.1), grid.tp + 0.1, grid.dp + 0.1, fill=False, ec="#555555",
                               lw=1.5, ls="--"))
        ax.text(x0 + (grid.tp + 0.1) / 2, grid.dp + 0.15, f"stage {pp}", ha="center", fontsize=9)
    if highlight == "pp":  # a pp group crosses the blocks: join its members
        for group in groups:
            xs, ys = zip(*(centres[r] for r in group))
            ax.plot(xs, ys, color="black", lw=0.8, ls=":", zorder=0.5)
    for i, group in enumerate(groups):
        ax.plot([], [], "s", color=RANK_COLORS[i % len(RANK_COLORS)], ms=9,
                label=f"{highlight} group {group}")
    if groups:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False,
                  title=f"{highlight}: {CARRIES[highlight]}", title_fontsize=8)
    ax.set_xlim(-0.3, grid.pp * (grid.tp + _GAP))
    ax.set_ylim(-0.3, grid.dp + 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"dp={grid.dp} × pp={grid.pp} × tp={grid.tp}: {grid.world} ranks "
                 f"(rank = (pp·{grid.dp} + dp)·{grid.tp} + tp)", fontsize=10)
    return ax.figure

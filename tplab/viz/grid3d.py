"""Lesson 07's picture of a 3D step's traffic: the bytes each rank handed to its tp, pp and dp
groups, as traced, beside the closed form (`tplab.grid3d.expected_traffic`).

Why per rank and per group: the three parallelisms put very different loads on very different
links (tp an all-reduce per layer, pp one activation per boundary, dp one gradient all-reduce
per step), and ranks of different stages differ too (the first stage holds the embedding, the
last the head). One stacked bar per rank shows both at once; a marker per group shows the
formula's figure, so a mismatch is visible as a marker off its bar's segment.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

__all__ = ["GROUP_COLORS", "draw_group_traffic"]

GROUP_COLORS = {"tp": "C3", "pp": "C0", "dp": "C2"}


def _group_bytes(traffic: dict, group: str) -> int:
    return sum(entry["bytes"] for entry in traffic.get(group, {}).values())


def draw_group_traffic(measured: list[dict], expected: list[dict], title: str = ""):
    """measured, expected: per rank, {group: {op: {"calls", "bytes"}}} (`train_3d`'s "traffic",
    `expected_traffic`). Stacked bars of KiB per group for each rank; expected as black ticks at
    the top of each segment. Returns the figure."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    ranks = range(len(measured))
    bottoms = [0.0] * len(measured)
    for group, color in GROUP_COLORS.items():
        seen = [_group_bytes(t, group) / 1024 for t in measured]
        formula = [_group_bytes(t, group) / 1024 for t in expected]
        ax.bar(ranks, seen, bottom=bottoms, color=color, label=f"{group} (traced)")
        tops = [b + f for b, f in zip(bottoms, formula)]
        ax.scatter(ranks, tops, marker="_", s=400, color="black", zorder=3,
                   label="formula" if group == "tp" else None)
        bottoms = [b + s for b, s in zip(bottoms, seen)]
    ax.set_xticks(list(ranks), [f"rank {r}" for r in ranks], fontsize=8)
    ax.set(ylabel="KiB handed to collectives", title=title or "bytes per rank and group")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig

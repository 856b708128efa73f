"""Pictures of ranks (lesson 00), kept here so a notebook cell stays one line and every lesson
draws ranks alike: the world of one launch, one bar per rank, what launching and a barrier cost."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

RANK_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3",
               "#8C8C8C"]


_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def sub(i) -> str:
    """An index as subscript digits, for labels like W₁₂: sub(12) == '₁₂'."""
    return str(i).translate(_SUB)


def rank_color(rank: int) -> str:
    return RANK_COLORS[rank % len(RANK_COLORS)]


def draw_world(world_size: int, backend: str = "gloo", labels: list[str] | None = None,
               title: str | None = None, ax=None):
    """The ranks of one launch: a process each, around the rendezvous store, every pair linked.

    `labels` (one per rank) is printed inside each rank's box, e.g. what it returned.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.6))
    radius = 1.0 if world_size > 1 else 0.0
    angles = [2 * math.pi * r / world_size for r in range(world_size)]
    spots = [(radius * math.sin(a), radius * math.cos(a)) for a in angles]
    for i in range(world_size):  # the backend connects every pair of ranks
        for j in range(i + 1, world_size):
            (x0, y0), (x1, y1) = spots[i], spots[j]
            ax.plot([x0, x1], [y0, y1], color="#999999", lw=1, zorder=1)
    if world_size > 1:
        for x, y in spots:
            ax.plot([0, x * 0.55], [0, y * 0.55], color="#bbbbbb", lw=1, ls=":", zorder=1)
        ax.text(0, 0, "store\n127.0.0.1", ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round", fc="#f2f2f2", ec="#777777"), zorder=2)
    for r, (x, y) in enumerate(spots):
        box = FancyBboxPatch((x - 0.33, y - 0.2), 0.66, 0.4, boxstyle="round,pad=0.02",
                             fc=rank_color(r), ec="black", alpha=0.9, zorder=3)
        ax.add_patch(box)
        text = f"rank {r}" + (f"\n{labels[r]}" if labels else "")
        ax.text(x, y, text, ha="center", va="center", color="white", fontsize=9, zorder=4)
    ax.set_xlim(-1.6, 1.6)
    ax.set_ylim(-1.45, 1.45)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or f"{world_size} rank{'s' if world_size > 1 else ''}, backend {backend}")
    return ax


def bar_per_rank(values, title: str, ylabel: str, line: float | None = None,
                 line_label: str = "", ax=None):
    """One bar per rank in its colour; optionally a dashed line at a value every rank is compared
    with."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    ranks = list(range(len(values)))
    ax.bar([f"rank {r}" for r in ranks], values, color=[rank_color(r) for r in ranks])
    if line is not None:
        ax.axhline(line, color="black", ls="--", lw=1, label=line_label or f"{line:g}")
        ax.legend(loc="lower right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return ax


def draw_launch_and_barrier(sizes, launch_ms, barrier_us, launches: int = 5,
                            barriers: int = 200):
    """Lesson 00's costs against the number of ranks: one launch (ms, left) and one barrier
    (µs, right; from 2 ranks on). Why both: a launch costs far more than any collective, so an
    experiment launches once and communicates many times."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(sizes, launch_ms, "o-")
    a.set(xlabel="ranks", ylabel="ms", title=f"launch overhead (median of {launches})",
          xticks=sizes)
    b.plot(sizes[1:], barrier_us[1:], "o-", color="C1")
    b.set(xlabel="ranks", ylabel="µs", title=f"one barrier (median of {barriers})",
          xticks=sizes[1:])
    fig.tight_layout()
    return fig

"""Lesson 08's pictures: what the interview bank holds, and what each kind of parallelism
spends away from computing, as the benchmarks' files recorded it.

    draw_bank(items)          items per topic, one bar each, split by kind (numeric, choice,
                              code): where the bank is thick and where it is thin
    draw_time_shares(rows)    per configuration, one bar of its time: computing, and what it
                              lost to communication, waiting or a bubble (the critical path)

Both draw exactly what they are given, so a lesson's picture and its numbers cannot disagree.
"""
from __future__ import annotations

from collections import Counter

import matplotlib.pyplot as plt

__all__ = ["draw_bank", "draw_time_shares"]

KIND_COLORS = {"numeric": "C0", "choice": "C2", "code": "C3"}


def draw_bank(items, title: str = "the interview bank"):
    """One horizontal bar per topic (in the order items first show them), split by kind, with
    each topic's total at its end. `items`: objects with `.topic` and `.kind`."""
    items = list(items)
    if not items:
        raise ValueError("no items to draw")
    topics = list(dict.fromkeys(i.topic for i in items))
    counts = Counter((i.topic, i.kind) for i in items)
    kinds = [k for k in KIND_COLORS if any(i.kind == k for i in items)]
    kinds += sorted({i.kind for i in items} - set(kinds))
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(topics) + 1.4))
    left = [0] * len(topics)
    for n, kind in enumerate(kinds):
        widths = [counts[t, kind] for t in topics]
        ax.barh(topics, widths, left=left, color=KIND_COLORS.get(kind, f"C{n + 4}"), label=kind)
        left = [a + b for a, b in zip(left, widths)]
    for y, total in enumerate(left):
        ax.text(total + 0.2, y, str(total), va="center", fontsize=9)
    ax.invert_yaxis()                       # the first topic on top
    ax.set_xlim(0, max(left) * 1.15 + 1)
    ax.set(xlabel="items", title=f"{title}: {len(items)} items")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    fig.tight_layout()
    return fig


def draw_time_shares(rows, title: str = "share of the time not spent computing"):
    """rows = [{"label": str, "lost": share in [0, 1], "what": what the share went to}, ...]:
    one bar per row, computing (grey) then the lost share (coloured); each bar's name says its
    lost share and what it went to."""
    rows = list(rows)
    for r in rows:
        if not 0.0 <= r["lost"] <= 1.0:
            raise ValueError(f"{r['label']!r}: a share must lie in [0, 1], got {r['lost']}")
    fig, ax = plt.subplots(figsize=(10, 0.75 * len(rows) + 1.5))
    names = [f"{r['label']}\n{r['lost']:.0%}: {r['what']}" for r in rows]
    lost = [r["lost"] for r in rows]
    ax.barh(names, [1 - x for x in lost], color="0.8", label="computing")
    ax.barh(names, lost, left=[1 - x for x in lost], color="C3", label="not computing")
    ax.tick_params(axis="y", labelsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set(xlabel="share of the time", title=title)
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    fig.tight_layout()
    return fig

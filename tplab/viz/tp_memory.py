"""Lesson 03's picture of activation memory per rank under tensor parallelism: what every rank
keeps whole (replicated) stacked under its share of the rest (sharded), measured on the course's
block and as published for a GPT layer (Korthikanti et al. 2022, arXiv:2205.05198)."""
from __future__ import annotations

import matplotlib.pyplot as plt

__all__ = ["draw_activation_bytes"]

REPLICATED, SHARDED = "#9E9E9E", "C0"


def _stack(ax, ts, replicated, sharded, unit, scale, title, sp=None):
    xs = range(len(ts))
    ax.bar(xs, [r / scale for r in replicated], color=REPLICATED,
           label="replicated (every rank, whole)")
    ax.bar(xs, [s / scale for s in sharded], bottom=[r / scale for r in replicated],
           color=SHARDED, label="sharded (1/t per rank)")
    if sp is not None:
        ax.plot(xs, [v / scale for v in sp], "k--o", ms=4,
                label="with sequence parallelism: all of it / t")
    ax.set_xticks(list(xs), [f"t = {t}" for t in ts])
    ax.set(ylabel=unit, title=title)
    ax.title.set_fontsize(10)


def draw_activation_bytes(measured: dict, published: dict):
    """measured = {"t": [...], "replicated": [...], "sharded": [...]} (bytes per rank, this
    block); published the same for the paper's GPT layer, with "sp" (sequence parallel)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    _stack(left, measured["t"], measured["replicated"], measured["sharded"], "KiB per rank",
           1024, measured.get("title", "this course's block, measured"))
    _stack(right, published["t"], published["replicated"], published["sharded"], "MiB per rank",
           2**20, published.get("title", "GPT layer, published formula"), published.get("sp"))
    left.legend(fontsize=8, frameon=False)
    right.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig

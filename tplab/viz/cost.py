"""Lesson 07's pictures of the cost model: memory per GPU of each configuration, stacked by what
holds it, against the GPU's capacity; and predicted against measured or published in ONE
convention (predicted time / actual time; memory rows predicted / actual bytes) with the
±25 % band the issue asks of every case."""
from __future__ import annotations

import matplotlib.pyplot as plt

__all__ = ["draw_memory_breakdown", "draw_predicted_vs_actual"]

PARTS = {"parameters": "C0", "gradients": "C1", "optimizer": "C2", "activations": "C3",
         "weights": "C9", "kv_cache": "C4"}   # decode's bf16 weights: not training's parameters


def draw_memory_breakdown(configs: list[tuple[str, dict]], capacity_bytes: float | None = None,
                          title: str = "memory per GPU"):
    """configs = [(label, {"parameters": bytes, ...}), ...] as `tplab.cost.training_memory` or
    `decode_memory` return them ("total" is ignored); `capacity_bytes` draws the GPU's limit."""
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(configs) + 2), 3.6))
    bottoms = [0.0] * len(configs)
    drawn = set()
    for part, color in PARTS.items():
        values = [parts.get(part, 0.0) / 1e9 for _, parts in configs]
        if not any(values):
            continue
        ax.bar(range(len(configs)), values, bottom=bottoms, color=color,
               label=part if part not in drawn else None)
        drawn.add(part)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    if capacity_bytes:
        ax.axhline(capacity_bytes / 1e9, color="k", ls="--", lw=1,
                   label=f"{capacity_bytes / 1e9:.0f} GB per GPU")
    ax.set_ylim(0, 1.08 * max([*bottoms, (capacity_bytes or 0) / 1e9]))   # no bar clipped
    ax.set_xticks(range(len(configs)), [label for label, _ in configs], rotation=30, ha="right",
                  fontsize=8)
    ax.set(ylabel="GB per GPU", title=title)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def draw_predicted_vs_actual(rows: list[dict], band: float = 0.25):
    """rows as `bench/cost_model.py` writes them ({"case", "predicted", "measured_or_published",
    "ratio"}): per case a bar from 1 to predicted time / actual time (`time_ratio`: speed rows
    inverted, memory rows as they are) and a dot at its end, so an exact case shows its dot."""
    from tplab.cost.validate import time_ratio

    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    ys = list(range(len(rows)))
    ratios = [time_ratio(r) for r in rows]
    colors = ["C2" if abs(q - 1) <= band else "C3" for q in ratios]
    ax.barh(ys, [q - 1 for q in ratios], left=1, color=colors, height=0.6)
    ax.scatter(ratios, ys, color=colors, edgecolor="k", zorder=3, s=18)
    ax.axvline(1, color="k", lw=1)
    ax.axvspan(1 - band, 1 + band, color="C2", alpha=0.1, label=f"±{band:.0%}")
    ax.set_yticks(ys, [r["case"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="predicted time / actual time (memory: predicted / actual bytes)\n"
                  "< 1: the model is optimistic", title="the cost model, checked")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    fig.tight_layout()
    return fig

"""Lesson 04's exercise 04.3: one decode step's compute time and memory time against the batch.

A step of B sequences computes for 2·P·B / F and reads for (P·w + B·kv) / BW; it turns
compute-bound where the first reaches the second, at B*. Without a KV cache the memory line is
flat (the weights, read once for the whole batch) and the compute line always crosses it; each
sequence's cache adds a slope of its own, and where that slope is as steep as compute's the
lines never meet.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np


def draw_step_vs_batch(panels, flops: float, bandwidth: float, max_batch: int = 4096):
    """One axis per panel: {"title", "params", "weight_bytes", "lines": {label: (kv bytes per
    sequence, B*)}}; time in ms on log-log axes, B* marked where the lines cross."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    b = np.unique(np.geomspace(1, max_batch, 200).round())
    for ax, panel in zip(axes[0], panels):
        p, w = panel["params"], panel["weight_bytes"]
        ax.plot(b, 2 * p * b / flops * 1e3, color="black", lw=2, label="compute: 2·P·B / F")
        nevers = 0
        for (label, (kv, b_star)), color in zip(panel["lines"].items(), ("C0", "C3", "C2", "C1")):
            ax.plot(b, (p * w + b * kv) / bandwidth * 1e3, color=color,
                    label=f"memory, {label}: (P·w + B·kv) / BW")
            if b_star != math.inf and b_star <= max_batch:
                ax.axvline(b_star, color=color, ls=":", lw=1)
                ax.annotate(f"B* = {b_star:,}", (b_star, 2 * p * b_star / flops * 1e3),
                            xytext=(6, -14), textcoords="offset points", color=color)
            else:
                ax.annotate(f"{label}: never (B* = inf)", (0.97, 0.05 + 0.08 * nevers),
                            xycoords="axes fraction", ha="right", color=color)
                nevers += 1
        ax.set(xscale="log", yscale="log", xlabel="batch B (sequences decoded together)",
               ylabel="ms per decode step", title=panel["title"])
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig

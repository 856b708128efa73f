"""Pictures of communication at scale (exercise 01.3): one all-reduce's predicted time in several
settings, split into its latency (α) and bandwidth (bytes) parts, so that which term and which
link decide it can be read off the bars."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Patch

BYTES = "#4C72B0"     # the bandwidth term: bytes / link bandwidth
LATENCY = "#DD8452"   # the latency term: messages × alpha


def draw_time_parts(parts: dict, title: str, ax=None):
    """Stacked bars, one per case: {label: (latency seconds, bandwidth seconds)}, drawn in ms,
    each labelled with its total and its latency part."""
    if ax is None:
        _, ax = plt.subplots(figsize=(1.9 * len(parts) + 2.4, 3.6))
    for i, (latency, volume) in enumerate(parts.values()):
        ax.bar(i, volume * 1e3, width=0.55, color=BYTES)
        ax.bar(i, latency * 1e3, bottom=volume * 1e3, width=0.55, color=LATENCY)
        total = (latency + volume) * 1e3
        ax.text(i, total, f"{total:.0f} ms\n(α part {latency * 1e3:.2g} ms)", ha="center",
                va="bottom", fontsize=8)
    ax.set_xticks(range(len(parts)), list(parts), fontsize=8)
    ax.set_ylabel("ms per all-reduce")
    ax.set_title(title, fontsize=10)
    ax.legend(handles=[Patch(color=BYTES, label="bytes / bandwidth (β part)"),
                       Patch(color=LATENCY, label="messages × α (α part)")], fontsize=8,
              loc="upper right")
    ax.margins(y=0.2)
    return ax

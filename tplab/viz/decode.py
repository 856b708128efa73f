"""Pictures of lesson 04: a model's bytes, its shards' memory, where a decoded token's time goes.

Conventions (the colours of `tplab.viz`): a bar in a rank's colour is that rank's; time
spent computing is blue, communicating orange, waiting for another rank grey; a prediction is a
black outline or marker next to the measured bar.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Patch, Rectangle

from tplab.tp.plan import shard_plan
from tplab.viz.ranks import rank_color

__all__ = ["rank_bytes", "draw_layer_bytes", "draw_memory_per_rank", "draw_time_split",
           "draw_predicted_vs_measured", "draw_attention_slices"]

COMPUTE, COMM, WAIT = "#4C72B0", "#DD8452", "#BBBBBB"
FILE = "#8C8C8C"


def rank_bytes(config, parts: int, dtype_bytes: int = 4) -> list[int]:
    """Predicted bytes of parameters on each of `parts` ranks (what `load_llama_tp` keeps).

    Each rank's slices of every tensor come from the sharding plan (`tplab.tp.shard_plan`, the
    one the loader reads by): per layer q and o by query heads, k and v by KV heads, gate/up/down
    by FFN features, both norms whole; the embedding by vocabulary range (tied to the LM head:
    stored once); the final norm whole.
    """
    return [dtype_bytes * plan.numel(config) for plan in shard_plan(config, parts)]


def draw_layer_bytes(rows, title: str = "SmolLM2-135M: where the bytes are", ax=None):
    """Horizontal bars, one per row (name, fp32 bytes, bytes in the file): what decoding reads.

    `rows` are e.g. the embedding, one layer's seven matrices and its norms, all 30 layers.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7.2, 0.32 * len(rows) + 1.0))
    names = [r[0] for r in rows][::-1]
    fp32 = [r[1] / 1e6 for r in rows][::-1]
    packed = [r[2] / 1e6 for r in rows][::-1]
    y = range(len(rows))
    ax.barh([i + 0.2 for i in y], fp32, height=0.4, color=COMPUTE,
            label="float32 in memory (what tplab reads)")
    ax.barh([i - 0.2 for i in y], packed, height=0.4, color=FILE,
            label="in the GGUF file (Q4_1 / Q8_0)")
    for i, v in zip(y, fp32):
        ax.text(v, i + 0.2, f" {v:.3g}", va="center", fontsize=7)
    ax.set_yticks(list(y), names, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(right=max(fp32) * 5)
    ax.set_xlabel("MB (log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    return ax


def draw_memory_per_rank(measured: dict, predicted: dict, dense_bytes: int, ax=None):
    """Bytes per rank for each tensor-parallel degree t: one bar per rank in its colour.

    `measured` {t: [bytes of rank 0, 1, ...]} (from the launched ranks) is drawn solid;
    `predicted` {t: [...]} for the degrees not measured, hatched. Dashed: dense / t.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8.0, 3.4))
    degrees = sorted(set(measured) | set(predicted))
    for t in degrees:
        values, solid = (measured[t], True) if t in measured else (predicted[t], False)
        width = 0.8 / len(values)
        for r, v in enumerate(values):
            x = t - 0.4 + width * (r + 0.5)
            ax.bar(x, v / 1e6, width=width * 0.92, color=rank_color(r) if solid else "white",
                   ec=rank_color(r), hatch=None if solid else "////", lw=0.8)
        ax.plot([t - 0.45, t + 0.45], [dense_bytes / t / 1e6] * 2, "k--", lw=1)
    ax.set_xticks(degrees)
    ax.set_xlabel("tensor-parallel degree t (one bar per rank)")
    ax.set_ylabel("parameters per rank (MB, fp32)")
    ax.set_title("memory per rank: measured (solid) and predicted from shard_plan (hatched)",
                 fontsize=10)
    ax.legend(handles=[Patch(fc=rank_color(0), label="measured: parameter_bytes in each rank"),
                       Patch(fc="white", ec="black", hatch="////",
                             label="predicted (not launched)"),
                       plt.Line2D([], [], color="black", ls="--", lw=1, label="dense / t")],
              fontsize=8)
    return ax


def draw_time_split(rows, predicted: dict | None = None, ax=None):
    """Stacked bars of time per decoded token: compute (blue), waiting for another rank inside
    all-reduces (grey), communicating (orange).

    `rows`: dicts with "tp", "route" (e.g. "gloo", "fast"), "compute_ms", "comm_ms" and,
    optionally, "wait_ms". `predicted` {(tp, route): ms}: a black diamond at the predicted total.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7.2, 3.6))
    labels = []
    for i, row in enumerate(rows):
        parts = [(row["compute_ms"], COMPUTE), (row.get("wait_ms", 0.0), WAIT),
                 (row["comm_ms"], COMM)]
        bottom = 0.0
        for value, color in parts:
            ax.bar(i, value, bottom=bottom, color=color, width=0.6)
            bottom += value
        ax.text(i, bottom, f"{bottom:.0f} ms", ha="center", va="bottom", fontsize=8)
        if predicted and (row["tp"], row["route"]) in predicted:
            ax.plot(i + 0.38, predicted[(row["tp"], row["route"])], "kD", ms=5)
        labels.append(f"TP {row['tp']}\n{row['route']}")
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("ms per decoded token")
    ax.set_title("SmolLM2-135M decode: where a token's time goes", fontsize=10)
    handles = [Patch(color=COMPUTE, label="compute")]
    if any(row.get("wait_ms") for row in rows):
        handles.append(Patch(color=WAIT, label="waiting for another rank"))
    handles.append(Patch(color=COMM, label="communicating (all-reduce)"))
    if predicted:
        handles.append(plt.Line2D([], [], color="black", marker="D", ls="", ms=5,
                                  label="predicted"))
    ax.legend(handles=handles, fontsize=8, loc="upper left")
    ax.margins(y=0.15)
    return ax


def draw_predicted_vs_measured(labels, bytes_ms, latency_ms, measured_ms, ax=None,
                               title: str = "predicted (bytes / bandwidth + all-reduces × latency) "
                                            "and measured"):
    """For each case: a predicted bar (bytes term, latency term stacked) beside the measured bar."""
    if ax is None:
        _, ax = plt.subplots(figsize=(1.5 * len(labels) + 2.5, 3.4))
    for i, (b, lat, m) in enumerate(zip(bytes_ms, latency_ms, measured_ms)):
        ax.bar(i - 0.18, b, width=0.34, color=COMPUTE)
        ax.bar(i - 0.18, lat, bottom=b, width=0.34, color=COMM)
        ax.bar(i + 0.18, m, width=0.34, color="white", ec="black", hatch="..")
        ax.text(i - 0.18, b + lat, f"{b + lat:.0f}", ha="center", va="bottom", fontsize=8)
        ax.text(i + 0.18, m, f"{m:.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel("ms per token")
    ax.set_title(title, fontsize=10)
    ax.legend(handles=[Patch(color=COMPUTE, label="predicted: bytes / bandwidth"),
                       Patch(color=COMM, label="predicted: all-reduces × latency"),
                       Patch(fc="white", ec="black", hatch="..", label="measured")], fontsize=8)
    ax.margins(y=0.15)
    return ax


def draw_attention_slices(slices, out_rows: dict, hidden: int, head_dim: int, title: str = ""):
    """Where each rank's slices sit in one layer's four attention weights ([out, in], as torch
    stores them).

    `slices`: per rank, {"q": (r0, r1), "k": ..., "v": ... row ranges, "o": (c0, c1) a column
    range}, a range None where the slice is not a block of the file's weight. `out_rows`:
    {"q": 576, "k": 192, ...}.
    Thin grey lines mark heads; each rank draws in its own lane, so replicated rows show twice.
    """
    fig, axes = plt.subplots(1, 4, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 1, 1, 1]})
    n = len(slices)
    for ax, name in zip(axes, ("q", "k", "v", "o")):
        rows, cols = (out_rows[name], hidden) if name != "o" else (hidden, out_rows["o"])
        ax.add_patch(Rectangle((0, 0), 1, 1, fc="white", ec="black", lw=1))
        heads = (rows if name != "o" else cols) // head_dim
        for j in range(1, heads):
            pos = j / heads
            xs, ys = ([0, 1], [1 - pos, 1 - pos]) if name != "o" else ([pos, pos], [0, 1])
            ax.plot(xs, ys, color="#cccccc", lw=0.6)
        for r, sl in enumerate(slices):
            span = sl.get(name)
            lane = (r / n, (r + 1) / n)
            if span is None:
                ax.text(0.5, 1 - (r + 0.5) / n, f"rank {r}: not a block\nof the file's weight",
                        ha="center", va="center", fontsize=7, color=rank_color(r))
                continue
            a, b = span
            if name != "o":  # rows: top to bottom
                ax.add_patch(Rectangle((lane[0], 1 - b / rows), lane[1] - lane[0], (b - a) / rows,
                                       fc=rank_color(r), ec="black", lw=0.6, alpha=0.9))
                ax.text((lane[0] + lane[1]) / 2, 1 - (a + b) / 2 / rows, f"{a}:{b}", rotation=90,
                        ha="center", va="center", fontsize=7, color="white")
            else:  # columns: left to right
                ax.add_patch(Rectangle((a / cols, 1 - lane[1]), (b - a) / cols, lane[1] - lane[0],
                                       fc=rank_color(r), ec="black", lw=0.6, alpha=0.9))
                ax.text((a + b) / 2 / cols, 1 - (lane[0] + lane[1]) / 2, f"{a}:{b}",
                        ha="center", va="center", fontsize=7, color="white")
        what = "columns" if name == "o" else "rows"
        ax.set_title(f"W_{name} [{rows}, {cols}]: {what}", fontsize=9)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.axis("off")
    fig.legend(handles=[Patch(color=rank_color(r), label=f"rank {r}") for r in range(n)],
               loc="lower center", ncol=n, fontsize=8)
    fig.suptitle(title or "one layer's attention weights: each rank's slices", fontsize=10)
    return fig

"""Lesson 05's pictures: a pipeline step as it ran (one row per rank), the bubble measured
against its closed form, and the activations each schedule keeps in flight.

Each draws what a real run produced — `tplab.pp.run_step`'s events, `tplab.pp.workloads`'
bubble rows, `Step.peak_inflight` — and returns the figure; the cell calls `plt.show()`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from tplab.pp.timeline import bubble_measured, makespan

__all__ = ["gantt", "bubble_vs_formula", "inflight", "micro_color"]

_MICRO_COLORS = plt.get_cmap("tab10").colors
_KIND_ALPHA = {"F": 0.45, "B": 1.0}   # forward light, backward dark, same hue per micro-batch


def micro_color(micro: int):
    """One hue per micro-batch (ten, then they repeat)."""
    return _MICRO_COLORS[micro % len(_MICRO_COLORS)]


def _label(e, chunks: bool) -> str:
    return f"{e.micro}.{e.chunk}" if chunks else str(e.micro)


def gantt(events_per_rank, ax=None, title: str | None = None):
    """One row per rank (rank 0 on top): each forward (light) and backward (dark) as a box,
    coloured by micro-batch and labelled with it ("3", or "3.1" for micro-batch 3 in chunk 1
    when interleaved); the grey behind them is idle time — the bubble. Sends and receives are
    not drawn (their events are in the list, and skipped).

    events_per_rank[r]: rank r's `Step.events` (seconds since the step's barrier)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.9 + 0.55 * len(events_per_rank)))
    p = len(events_per_rank)
    end_ms = makespan(events_per_rank) * 1e3
    chunks = any(e.chunk for events in events_per_rank for e in events)
    for rank, events in enumerate(events_per_rank):
        ax.barh(rank, end_ms, height=0.8, color="#eeeeee", edgecolor="#cccccc", lw=0.5)
        for e in events:
            start, width = e.start * 1e3, (e.end - e.start) * 1e3
            if e.kind in _KIND_ALPHA:
                ax.barh(rank, width, left=start, height=0.8, color=micro_color(e.micro),
                        alpha=_KIND_ALPHA[e.kind], edgecolor="black", lw=0.5)
                if width > end_ms / 80:
                    ax.text(start + width / 2, rank, _label(e, chunks), ha="center",
                            va="center", fontsize=7)
    ax.set_yticks(range(p), [f"rank {r}" for r in range(p)])
    ax.set_ylim(p - 0.5, -0.5)
    ax.set_xlim(0, end_ms * 1.01)
    ax.set_xlabel("ms since the step's barrier")
    share = bubble_measured(events_per_rank, "total")
    ax.set_title(title or f"one pipeline step on {p} ranks: idle {share:.0%} of the step")
    ax.legend(handles=[Patch(color="grey", alpha=_KIND_ALPHA["F"], label="forward"),
                       Patch(color="grey", alpha=_KIND_ALPHA["B"], label="backward"),
                       Patch(facecolor="#eeeeee", edgecolor="#cccccc", label="idle")],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.figure.tight_layout()
    return ax.figure


_MARKERS = {"gpipe": "o", "1f1b": "s", "interleaved": "^"}
_CONVENTIONS = (("total", "share of the step  (p−1)/(v·m+p−1)\nGPipe, Huang et al. 2019"),
                ("ideal", "over the ideal time  (p−1)/(v·m)\n"
                          "Narayanan et al. 2021, arXiv:2104.04473"))


def bubble_vs_formula(rows, tolerance: float = 0.05):
    """Measured bubble (y) against the closed form (x), one panel per convention, one marker
    per schedule, coloured by p; the band is ±`tolerance`.

    rows: `tplab.pp.workloads.bubble_row` dicts (schedule, p, m, v, measured_total,
    formula_total, measured_ideal, formula_ideal)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    ps = sorted({r["p"] for r in rows})
    for ax, (conv, label) in zip(axes, _CONVENTIONS):
        xs = [r[f"formula_{conv}"] for r in rows]
        top = max(xs + [r[f"measured_{conv}"] for r in rows]) * 1.08
        line = [0, top]
        ax.plot(line, line, color="black", lw=1, label="measured = formula")
        ax.fill_between(line, [x - tolerance for x in line], [x + tolerance for x in line],
                        color="C2", alpha=0.15, label=f"±{tolerance}")
        for r in rows:
            ax.scatter(r[f"formula_{conv}"], r[f"measured_{conv}"],
                       marker=_MARKERS.get(r["schedule"], "x"), s=36,
                       color=f"C{ps.index(r['p'])}", edgecolor="black", lw=0.5)
        ax.set(xlim=(0, top), ylim=(0, top), xlabel="closed form", ylabel="measured",
               title=label)
        ax.title.set_fontsize(10)
    handles = [plt.Line2D([], [], marker=mk, ls="", color="grey", label=name)
               for name, mk in _MARKERS.items() if any(r["schedule"] == name for r in rows)]
    handles += [Patch(color=f"C{i}", label=f"p = {p}") for i, p in enumerate(ps)]
    handles += axes[0].get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    fig.suptitle("the pipeline bubble, measured on real ranks vs the closed form")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def inflight(peaks: dict[str, list[int]], saved_bytes: dict[str, list[int]] | None = None,
             formula: dict[str, list[int]] | None = None):
    """Per rank, the most micro-batches holding activations at once, one bar per schedule
    (e.g. {"gpipe": [8, 8, 8, 8], "1f1b": [4, 3, 2, 1]}); `formula` (same shape) as black
    ticks; `saved_bytes` (same shape, bytes) in a second panel."""
    panels = [("micro-batches in flight (peak)", "micro-batches", peaks, formula)]
    if saved_bytes is not None:
        kib = {k: [b / 1024 for b in v] for k, v in saved_bytes.items()}
        panels.append(("activations saved for backward (peak)", "KiB", kib, None))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.2), squeeze=False)
    names = list(peaks)
    width = 0.8 / len(names)
    for ax, (title, ylabel, values, expected) in zip(axes[0], panels):
        for i, name in enumerate(names):
            ranks = range(len(values[name]))
            xs = [r - 0.4 + width * (i + 0.5) for r in ranks]
            ax.bar(xs, values[name], width, color=f"C{i}", label=name)
            if expected is not None:
                ax.scatter(xs, expected[name], marker="_", s=300, color="black",
                           label="formula" if i == 0 else None)
        ax.set_xticks(list(ranks), [f"rank {r}" for r in ranks])
        ax.set(ylabel=ylabel, title=title)
        ax.title.set_fontsize(10)
        ax.legend(fontsize=8)
    fig.suptitle("what each schedule keeps in memory, measured in the run")
    fig.tight_layout()
    return fig

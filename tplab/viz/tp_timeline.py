"""Lesson 03's pictures of why tensor parallelism stays inside a server: one TP step above one DP
step on the same time axis (TP's all-reduces block, DP's buckets overlap backward), and the
per-layer all-reduce time on each kind of link against the layer's compute.

Each draws what it is given (a real run's `tplab.tp.timeline.StepClock` summaries, or
`tplab.tp.links.layer_times`) and returns the figure; the cell calls `plt.show()`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from tplab.tp.timeline import bucket_spans
from tplab.viz.ranks import rank_color

__all__ = ["draw_tp_vs_dp", "draw_link_times"]

FORWARD, COMM, DP_COMM = "#bbbbbb", "C3", "C2"


def _compute_bars(ax, y, spans, rank, backward_at):
    """Compute between collectives, cut at the backward mark: the gap from the last forward g
    to the first backward f holds the loss and the last block's backward, so it straddles it."""
    for a, b in spans:
        for lo, hi, color in ((a, min(b, backward_at), FORWARD),
                              (max(a, backward_at), b, rank_color(rank))):
            if hi > lo:
                ax.barh(y, hi - lo, left=lo, height=0.6, color=color)


def draw_tp_vs_dp(tp: dict, dp: dict, dp_events: list, rank: int = 0):
    """Top: a TP step (`StepClock.summary()` of rank `rank`): compute between the all-reduces,
    each all-reduce in red; bottom: a DP step with its `DataParallel` events (ms from the same
    clock): forward, backward, finish_gradient_sync, and each bucket from launch to complete."""
    spans = bucket_spans(dp_events)
    buckets = list(spans)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 2.2 + 0.22 * len(buckets) + 1.6),
                                      sharex=True, height_ratios=[1.6, 1.2 + 0.3 * len(buckets)])
    # TP: the compute is what lies between the collectives
    calls = [(a, b) for op, _, a, b in tp["calls"] if op == "all_reduce"]
    edges = [0.0] + [x for a, b in calls for x in (a, b)] + [tp["marks"]["end"]]
    gaps = list(zip(edges[::2], edges[1::2]))
    _compute_bars(top, 1, gaps, rank, tp["marks"]["backward"])
    for a, b in calls:
        top.barh(0, b - a, left=a, height=0.6, color=COMM)
        top.axvline(b, color=COMM, lw=0.5, ls=":")
    top.set_yticks([1, 0], ["compute", "all-reduce"])
    top.set_ylim(-0.6, 1.6)
    top.invert_yaxis()
    top.set_title(f"tensor parallel, rank {rank}: {len(calls)} all-reduces (f and g); each one's "
                  f"result is the next op's input", fontsize=10, loc="left")
    # DP: forward, backward, the wait for the buckets; the buckets in flight below
    m = dp["marks"]
    bottom.barh(-1, m["backward"], color=FORWARD, height=0.6, label="forward")
    bottom.barh(-1, m["sync"] - m["backward"], left=m["backward"], height=0.6,
                color=rank_color(rank), label="backward")
    bottom.barh(-1, m["end"] - m["sync"], left=m["sync"], height=0.6, color="white",
                hatch="///", edgecolor="black", label="finish_gradient_sync (waiting)")
    for b, (launch, complete) in spans.items():
        bottom.barh(b, complete - launch, left=launch, height=0.6, color=DP_COMM,
                    label="bucket all-reduce, launch → complete" if b == buckets[0] else None)
    bottom.set_yticks([-1] + buckets, ["compute"] + [f"bucket {b}" for b in buckets])
    bottom.invert_yaxis()
    bottom.set_title(f"data parallel, rank {rank}: {len(buckets)} bucket all-reduces, in flight "
                     f"while backward goes on", fontsize=10, loc="left")
    bottom.set_xlabel("ms since the step began")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in (FORWARD, rank_color(rank), COMM)]
    top.legend(handles, ["forward", "backward", "all-reduce (blocking)"], fontsize=8, ncol=3,
               loc="upper right", frameon=False, bbox_to_anchor=(1, 1.35))
    bottom.legend(fontsize=8, loc="lower left", frameon=False)  # buckets start after forward
    fig.tight_layout()
    return fig


def draw_link_times(rows: list[tuple[int, dict]], title: str):
    """For each TP degree t (rows of (t, `layer_times(...)`)): the layer's compute time on one
    rank beside its all-reduce time on each link, in ms (bars grouped by t)."""
    links = list(rows[0][1]["link_s"])
    names = ["compute (peak bf16, 1/t of the layer)"] + links
    fig, ax = plt.subplots(figsize=(8, 3))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [(r["compute_s"] if i == 0 else r["link_s"][name]) * 1e3 for _, r in rows]
        xs = [k + (i - (len(names) - 1) / 2) * width for k in range(len(rows))]
        ax.bar(xs, values, width, label=name, color="#555555" if i == 0 else f"C{i - 1}")
    ax.set_xticks(range(len(rows)), [f"t = {t}" for t, _ in rows])
    ax.set_ylabel("ms per layer and step")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig

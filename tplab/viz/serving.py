"""Lesson 06's pictures: a serving run's requests per worker, latency CDFs, the workload's
lengths, and which request sat in a batch at each decode step.

Why these: task parallelism has no messages to draw, only scheduling, so the pictures show
*who served what, when* (`timeline`), *what users waited* (`latency_cdfs`), *why scheduling
matters at all* (`workload_histogram`: a heavy tail) and *how full a batch stayed*
(`batch_steps`). Each takes the `tplab.serve` objects as they are (`Report`, `Request`).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["workload_histogram", "timeline", "latency_cdfs", "batch_steps"]


def workload_histogram(requests, title="the workload"):
    """Two panels: the requests' `max_new_tokens` (the heavy tail) and their prompt lengths."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 2.8))
    new = [r.max_new_tokens for r in requests]
    left.hist(new, bins=range(1, max(new) + 2), color="C0", edgecolor="white")
    left.set(xlabel="max_new_tokens", ylabel="requests",
             title=f"{title}: {len(new)} requests, {sum(new)} tokens at most")
    for q, ls in ((0.5, "--"), (0.9, ":")):
        v = float(np.quantile(new, q))
        left.axvline(v, color="black", ls=ls, lw=1, label=f"{q:.0%} are ≤ {v:g}")
    left.legend(fontsize=8, frameon=False)
    prompts = [len(r.prompt_ids) for r in requests]
    right.hist(prompts, bins=12, color="C7", edgecolor="white")
    right.set(xlabel="prompt tokens (chat template included)", ylabel="requests",
              title="prompt lengths")
    fig.tight_layout()
    return fig


def timeline(reports, titles=None, label_min_s=None):
    """One panel per Report (a list, or one Report), one row per worker: each request a bar
    from `started` to `finished`, labelled with its id, hatched if it was retried (attempts > 1);
    the makespan marked. Panels share the time axis (seconds from the run's t0)."""
    reports = [reports] if hasattr(reports, "records") else list(reports)
    titles = titles or [r.policy for r in reports]
    end = max(r.makespan for r in reports)
    label_min_s = end / 60 if label_min_s is None else label_min_s
    fig, axes = plt.subplots(len(reports), 1, figsize=(10, 0.55 + 0.5 * sum(
        r.workers for r in reports) + 0.45 * len(reports)), sharex=True, squeeze=False)
    longest = max(len(rec.tokens) for r in reports for rec in r.records) or 1
    cmap = plt.get_cmap("viridis_r")
    for ax, report, title in zip(axes[:, 0], reports, titles):
        for rec in report.records:
            color = cmap(0.15 + 0.75 * len(rec.tokens) / longest)
            ax.barh(rec.worker, rec.finished - rec.started, left=rec.started, height=0.7,
                    color=color, edgecolor="white", hatch="//" if rec.attempts > 1 else None)
            if rec.finished - rec.started >= label_min_s:
                ax.text((rec.started + rec.finished) / 2, rec.worker, str(rec.id), ha="center",
                        va="center", fontsize=7, color="white" if len(rec.tokens) > longest / 2
                        else "black")
        ax.axvline(report.makespan, color="C3", lw=1.5)
        ax.text(report.makespan, report.workers - 0.45, f" makespan {report.makespan:.1f} s",
                color="C3", fontsize=8, va="top")
        ax.set(yticks=range(report.workers), ylim=(report.workers - 0.5, -0.5),
               yticklabels=[f"worker {w}" for w in range(report.workers)], title=title)
        ax.title.set_fontsize(10)
    axes[-1, 0].set_xlim(0, end * 1.12)
    axes[-1, 0].set_xlabel("seconds from t0 (every replica loaded); darker = more tokens; "
                           "hatched = retried")
    fig.tight_layout()
    return fig


def latency_cdfs(reports: dict, title="request latency"):
    """{label: Report}: each run's latencies (finished - submitted) as a step CDF, p50 and p95
    marked with dots."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for i, (label, report) in enumerate(reports.items()):
        lat = np.sort(report.latencies)
        frac = np.arange(1, len(lat) + 1) / len(lat)
        ax.step(lat, frac, where="post", color=f"C{i}", lw=1.8,
                label=f"{label}: p50 {report.p50:.1f} s, p95 {report.p95:.1f} s")
        ax.plot([report.p50, report.p95], [0.5, 0.95], "o", color=f"C{i}", ms=4)
    ax.set(xlabel="latency, seconds (submitted at t = 0 → last token)",
           ylabel="fraction of requests", ylim=(0, 1.02), title=title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def batch_steps(reports: dict):
    """{label: Report with .steps}: one panel each, a row per request (ids in order), a column
    per decode step, a cell filled when that request got a token at that step; the batch size
    per step drawn underneath."""
    fig, axes = plt.subplots(2, len(reports), figsize=(5.2 * len(reports), 5.2),
                             gridspec_kw={"height_ratios": [3, 1]}, squeeze=False,
                             sharey="row")
    ids = sorted({i for r in reports.values() for step in r.steps for i in step})
    row = {rid: k for k, rid in enumerate(ids)}
    width = max(len(r.steps) for r in reports.values())
    for k, (label, report) in enumerate(reports.items()):
        grid = np.zeros((len(ids), width))
        for s, step in enumerate(report.steps):
            for rid in step:
                grid[row[rid], s] = 1
        top, bottom = axes[0, k], axes[1, k]
        top.imshow(grid, aspect="auto", cmap="Greys", interpolation="nearest",
                   extent=(-0.5, width - 0.5, len(ids) - 0.5, -0.5))
        top.set(ylabel="request id", title=f"{label}: {len(report.steps)} steps, "
                f"{report.tokens / len(report.steps):.2f} tokens a step")
        sizes = [len(step) for step in report.steps]
        bottom.bar(range(len(sizes)), sizes, width=1.0, color="C0")
        bottom.axhline(report.workers, color="C3", lw=1, ls="--")
        bottom.set(xlim=(-0.5, width - 0.5), xlabel="decode step", ylabel="batch size")
    fig.tight_layout()
    return fig

"""Exercises 06's pictures: the learner's schedules of a serving pool, one row per worker, and
the batch at every step of their continuous batching.

Each draws what the learner's code returned (or what a check's run recorded) and returns the
figure; the cell calls `plt.show()`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

__all__ = ["draw_schedules", "draw_batches"]

_COLORS = plt.get_cmap("tab20").colors


def _color(request: int):
    return _COLORS[request % len(_COLORS)]


def draw_schedules(schedules: dict, title: str | None = None):
    """One panel per schedule ({label: [(worker, start, finish)] per request}), one row per
    worker (worker 0 on top), each request a box labelled with its id; the makespan marked."""
    fig, axes = plt.subplots(len(schedules), 1, sharex=True,
                             figsize=(10, 0.6 + 0.9 * sum(
                                 1 + max(w for w, _, _ in s) for s in schedules.values()) / 1.6))
    axes = [axes] if len(schedules) == 1 else list(axes)
    for ax, (label, schedule) in zip(axes, schedules.items()):
        workers, end = 1 + max(w for w, _, _ in schedule), max(f for _, _, f in schedule)
        for i, (w, start, finish) in enumerate(schedule):
            ax.broken_barh([(start, finish - start)], (w - 0.4, 0.8), color=_color(i),
                           edgecolor="white")
            if finish - start >= 0.025 * end:  # room for the label
                ax.text((start + finish) / 2, w, str(i), ha="center", va="center", fontsize=7)
        ax.axvline(end, color="black", lw=1, ls="--")
        ax.set(yticks=range(workers), yticklabels=[f"worker {w}" for w in range(workers)],
               title=f"{label}: makespan {end:g} units")
        ax.invert_yaxis()
    axes[-1].set_xlabel("time (units: one per generated token)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def draw_batches(steps, max_batch: int, title: str | None = None):
    """The batch at each step (`steps[k]`: the request ids that got a token at step k): one
    column per step, one cell per slot, coloured by request; empty slots left blank."""
    fig, ax = plt.subplots(figsize=(min(12, 2 + 0.45 * len(steps)), 0.8 + 0.45 * max_batch))
    slots: dict[int, int] = {}  # a request keeps its slot while it runs; one joining takes the
    for k, ids in enumerate(steps):  # lowest free slot
        slots = {rid: s for rid, s in slots.items() if rid in ids}
        for rid in ids:
            if rid not in slots:
                slots[rid] = min(set(range(len(ids) + len(slots))) - set(slots.values()))
        for rid, slot in slots.items():
            ax.add_patch(plt.Rectangle((k, slot), 1, 1, color=_color(rid), ec="white"))
            ax.text(k + 0.5, slot + 0.5, str(rid), ha="center", va="center", fontsize=7)
    top = max([max_batch] + [len(ids) for ids in steps])
    ax.set(xlim=(0, len(steps)), ylim=(top, 0), xlabel="decode step",
           yticks=[s + 0.5 for s in range(top)], yticklabels=[f"slot {s}" for s in range(top)],
           title=title or f"the batch at each step (max_batch {max_batch})")
    fig.tight_layout()
    return fig

"""Lesson 02's pictures: replicas drifting apart, DP throughput, serving latency against load,
one training step's timeline, the benchmark's step times, all-reduces per step with gradient
accumulation, when backward can hide the all-reduce, and two training curves that are one; and
its exercises' (the learner's shards and replicas, all-reduces per step).

Each draws what a real run produced (the lesson passes its measurements in) and returns the
figure; the cell calls `plt.show()`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from tplab.viz.ranks import bar_per_rank, rank_color

__all__ = ["draw_replica_gap", "draw_throughput", "draw_step_timeline", "draw_step_times",
           "draw_loss_curves", "draw_shards_and_gaps", "draw_all_reduces_per_step",
           "draw_serving_latency", "draw_syncs_per_step", "draw_overlap_threshold"]


def draw_replica_gap(drift: list[float], synced: list[float]):
    """The largest parameter difference between two replicas after each step, without and with
    the gradient all-reduce (a symlog axis, so that the exact zeros show)."""
    fig, ax = plt.subplots(figsize=(6.5, 3))
    steps = range(1, len(drift) + 1)
    ax.plot(steps, drift, "o-", color="C3", label="no gradient all-reduce (the article)")
    ax.plot(steps, synced, "o-", color="C2", label="all-reduce + divide (exactly 0)")
    ax.set_yscale("symlog", linthresh=1e-6)
    ax.set(xlabel="step", ylabel="max |rank 0 − rank 1|", xticks=list(steps), ylim=(-1e-7, 1),
           title="two replicas, one global batch per step")
    ax.legend(fontsize=8)
    return fig


def draw_throughput(rows_per_s: dict[str, float], repeats: int = 5):
    """One bar per set-up ({"1 rank, 1 thread": rows/s, ...}), in the order given."""
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    ax.barh(list(rows_per_s), list(rows_per_s.values()), color=["C0", "C1", "C7"])
    ax.invert_yaxis()
    ax.set(xlabel=f"rows per second (median of {repeats})",
           title="DP inference on this machine")
    return fig


def draw_step_timeline(timelines, bucket_mb: float = 1.0):
    """One panel per rank: its compute (forward, backward, finish_gradient_sync) on top and, per
    bucket, its gradients arriving, its all-reduce from launch to completion, and when
    finish_gradient_sync collected it.

    timelines[rank] = (events, (t_backward, t_backward_end, t_synced)): `DataParallel.events`
    of a step recorded with timeline=True, and the step's own perf_counter marks."""
    fig, axes = plt.subplots(len(timelines), 1, figsize=(9, 1.2 + 2.1 * len(timelines)),
                             sharex=True, squeeze=False)
    for rank, (ax, (events, marks)) in enumerate(zip(axes[:, 0], timelines)):
        _draw_rank_step(ax, rank, events, marks)
    axes[-1, 0].set_xlabel("ms since the forward pass began")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"one training step, {bucket_mb:g} MiB buckets: the all-reduces run while "
                 f"backward is still going")
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    return fig


def _draw_rank_step(ax, rank: int, events, marks) -> None:
    t0 = events[0][2]  # the "forward" event: time zero

    def ms(t):
        return (t - t0) * 1e3

    t_backward, t_backward_end, t_synced = (ms(t) for t in marks)
    at = {kind: {b: ms(t) for k, b, t in events if k == kind}
          for kind in ("launch", "complete", "done")}
    n = len(at["launch"])
    compute_row = n + 0.5
    ax.barh(compute_row, t_backward, color="#bbbbbb", label="forward")
    ax.barh(compute_row, t_backward_end - t_backward, left=t_backward, color=rank_color(rank),
            label="backward")
    ax.barh(compute_row, t_synced - t_backward_end, left=t_backward_end, color="white",
            hatch="///", edgecolor="black", label="finish_gradient_sync")
    ready = [(b, ms(t)) for kind, b, t in events if kind == "ready"]
    ax.scatter([t for _, t in ready], [b for b, _ in ready], marker="|", s=70, color="black",
               label="a gradient ready")
    for b in range(n):
        ax.barh(b, at["complete"][b] - at["launch"][b], left=at["launch"][b], height=0.55,
                color="C2", label="bucket all-reduce, launch → complete" if b == 0 else None)
    ax.scatter([at["done"][b] for b in range(n)], range(n), marker="x", color="C3", s=25,
               label="collected by finish_gradient_sync")
    ax.set_yticks(list(range(n)) + [compute_row], [f"bucket {b}" for b in range(n)] + ["compute"])
    ax.invert_yaxis()
    ax.set_title(f"rank {rank}", fontsize=10, loc="left")


def draw_step_times(step_ms: dict[str, float], title: str):
    """bench/ddp.py's median step time per implementation: naive, bucketed, torch_ddp."""
    fig, ax = plt.subplots(figsize=(6, 2.8))
    names = list(step_ms)
    ax.bar(names, [step_ms[n] for n in names], color=["C3", "C2", "C0"])
    ax.set(ylabel="median step (ms)", title=title)
    return fig


def draw_loss_curves(curve_1: list[float], curve_2: list[float]):
    """The training loss on 1 and on 2 ranks, over each other, and their difference."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    a.plot(curve_1, color=rank_color(0), lw=3, alpha=0.5, label="1 rank, batch 64")
    a.plot(curve_2, color=rank_color(1), lw=1, label="2 ranks, 32 rows each")
    a.set(xlabel="step", ylabel="cross-entropy of the global batch", yscale="log",
          title="SMS spam: training loss")
    a.legend()
    b.plot([abs(x - y) for x, y in zip(curve_1, curve_2)], color="black", lw=1)
    b.axhline(1e-6, color="C3", ls="--", lw=1, label="1e-6")
    b.set(xlabel="step", ylabel="|1 rank − 2 ranks|", title="difference between the curves")
    b.set_yscale("symlog", linthresh=1e-9)
    b.legend()
    fig.tight_layout()
    return fig


def draw_shards_and_gaps(rows_per_rank: list[int], gaps: list[float], batch_rows: int = 12):
    """Exercise 02.1: which rows of step 0's batch each rank ran (left), and how far each replica
    ended from one process (right, log scale; an exact 0 is drawn at 1e-12)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 2.8), gridspec_kw={"width_ratios": [1.3, 1]})
    start = 0
    for r, rows in enumerate(rows_per_rank):
        a.barh(0, rows, left=start, color=rank_color(r), edgecolor="white", label=f"rank {r}")
        start += rows
    a.set(xlim=(0, batch_rows), yticks=[], xlabel="row of the global batch",
          title="your shards (step 0)")
    a.legend(ncol=3, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.45))
    bar_per_rank([max(g, 1e-12) for g in gaps], "after 4 steps: max |replica − one process|", "",
                 line=1e-6, line_label="1e-6", ax=b)
    b.set_yscale("log")
    b.set_ylim(1e-10, 1e-5)
    fig.tight_layout()
    return fig


def draw_all_reduces_per_step(naive: int, bucketed: dict[str, int]):
    """Exercise 02.2: all-reduces per step, one per parameter (naive) against one per bucket
    ({label: count} for each bucket size)."""
    fig, ax = plt.subplots(figsize=(6.5, 3))
    ax.bar(["naive\n(one per parameter)"] + list(bucketed), [naive] + list(bucketed.values()),
           color=["C3"] + ["C2"] * len(bucketed))
    ax.set(ylabel="all-reduces per step", title="your BucketedSync, all-reduces counted on rank 0")
    return fig


def draw_serving_latency(loads: list[float], latency_s: dict[str, list[float]], service_s: float,
                         capacities: dict[str, float]):
    """DP for serving: mean latency of a request against the offered load (requests/s), one curve
    per set-up ({"1 replica": [...], ...}, seconds), from a queue model priced with one measured
    service time; a dashed line at each set-up's capacity (requests/s).

    A set-up's points at or past its capacity are left out: there its queue grows with the length
    of the run, so a finite simulation's mean latency is an artefact of where the run stopped.
    For a set-up of one replica (capacity 1/service_s) the M/D/1 queue's mean latency,
    s(1 + ρ/(2(1 − ρ))) at ρ = load·s (the Pollaczek–Khinchine formula), is drawn beside it."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (name, values) in enumerate(latency_s.items()):
        below = [(load, v) for load, v in zip(loads, values) if load < capacities[name]]
        ax.plot([load for load, _ in below], [v * 1e3 for _, v in below], "o-", ms=3,
                color=f"C{i}", label=f"{name} (simulated)")
        ax.axvline(capacities[name], color=f"C{i}", ls="--", lw=1, label=f"{name}: capacity")
        if abs(capacities[name] * service_s - 1) < 1e-9:
            rho = [load * service_s for load, _ in below]
            ax.plot([r / service_s for r in rho],
                    [service_s * (1 + r / (2 * (1 - r))) * 1e3 for r in rho], color=f"C{i}",
                    lw=0.8, ls="-.", label=f"{name}, M/D/1 formula")
            ax.text(capacities[name], 0.6, " past capacity\n the queue grows\n without end",
                    fontsize=7, color=f"C{i}", transform=ax.get_xaxis_transform())
    ax.axhline(service_s * 1e3, color="black", lw=0.8, ls=":",
               label="one request alone (the same on both)")
    ax.set_yscale("log")
    ax.set(xlabel="offered load (requests per second)", ylabel="mean latency (ms)",
           title="replicas behind a router (queue model, measured service time)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    fig.tight_layout()
    return fig


def draw_syncs_per_step(ks: list[int], with_no_sync: list[int],
                        without: list[int] | None = None, title: str | None = None,
                        ranks: int | None = None):
    """Gradient accumulation: gradient all-reduces (DDP's bucket syncs) per optimizer step against
    the number k of micro-batches, with `no_sync` for the first k-1 and, if given, without. The
    default title names the number of ranks if `ranks` is given."""
    fig, ax = plt.subplots(figsize=(6.5, 3))
    if without is not None:
        ax.plot(ks, without, "o-", color="C3", label="without no_sync: one per micro-batch")
    ax.plot(ks, with_no_sync, "s-", color="C2", label="no_sync for the first k − 1: one per step")
    ax.set(xlabel="micro-batches per optimizer step (k)", ylabel="all-reduces per step",
           xticks=list(ks), ylim=(0, max(list(with_no_sync) + list(without or [])) + 1),
           title=title or "gradient accumulation" + (f" on {ranks} ranks" if ranks else ""))
    ax.legend(fontsize=8)
    return fig


def draw_overlap_threshold(tokens: list[float], backward_s: list[float], all_reduce_s: float,
                           crossing: float, measured: list[tuple[float, float]] | None = None,
                           predicted_all_reduce: float | None = None):
    """When backward can hide the all-reduce: the model's backward time 4PT/F (grows with the
    tokens per rank) against the measured all-reduce of the gradients (does not), crossing at
    `crossing` tokens; measured backward times [(tokens, seconds)] as points and the α–β fit's
    prediction for the same all-reduce as a dotted line, if given (how far the fit misses)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.plot(tokens, [t * 1e3 for t in backward_s], color="C0", label="backward, model 4PT/F")
    ax.axhline(all_reduce_s * 1e3, color="C3", label="all-reduce of the gradients, measured")
    if predicted_all_reduce is not None:
        ax.axhline(predicted_all_reduce * 1e3, color="C3", ls=":",
                   label="the same all-reduce, α–β fit's prediction")
    ax.axvline(crossing, color="black", ls="--", lw=1,
               label=f"crossing: {crossing:.0f} tokens per rank")
    if measured:
        ax.plot([t for t, _ in measured], [s * 1e3 for _, s in measured], "o", color="C0",
                label="backward, measured")
    ax.set(xscale="log", yscale="log", xlabel="tokens (rows) per rank per step",
           ylabel="ms", title="overlap can hide the all-reduce right of the crossing")
    ax.legend(fontsize=8)
    return fig

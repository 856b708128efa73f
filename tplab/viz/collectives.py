"""Pictures of collectives: every rank's data before and after, and ring all-reduce step by step.

The data drawn is the data a real run produced. To make a tensor say whose data it holds,
lesson 01 fills it with *pieces*: piece (r, c) — chunk c of rank r's input — is the
integer 2**(r·k + c) (k chunks per rank). A collective only copies and sums pieces, each
at most once into any element, so every value that comes out is a sum of distinct powers of
two, and its bits name exactly which pieces it holds. `decode` reads them back.

In the pictures a row is a rank and a cell is a chunk. A cell's colour is the rank whose
data it is (the colours of `tplab.viz`), striped when it is a sum of several ranks' data;
its label is the chunk's letter (A = chunk 0, B = chunk 1, ...) with the ranks whose copies
it holds as subscripts: B₂ is rank 2's chunk B, A₀₁₂₃ = A₀ + A₁ + A₂ + A₃.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib import patheffects
from matplotlib.patches import Rectangle

from tplab.comm import cost
from tplab.viz.ranks import rank_color, sub

__all__ = ["piece", "pieces", "decode", "cell_label", "draw_ranks", "draw_before_after",
           "draw_ring_steps", "draw_alpha_beta_fit", "draw_all_reduce_bench"]

LETTERS = "ABCDEFGH"


def piece(rank: int, chunk: int, chunks: int) -> int:
    """The value standing for chunk `chunk` of rank `rank`'s input (`chunks` chunks per rank)."""
    if not 0 <= chunk < chunks:
        raise ValueError(f"chunk {chunk} is not in 0..{chunks - 1}")
    bit = rank * chunks + chunk
    if bit > 62:
        raise ValueError("too many ranks × chunks to encode in an int64 (at most 63 pieces)")
    return 1 << bit


def pieces(rank: int, chunks: int, which=None) -> list[int]:
    """Rank `rank`'s pieces, one per chunk (or only the chunks listed in `which`)."""
    return [piece(rank, c, chunks) for c in (range(chunks) if which is None else which)]


def decode(value, chunks: int) -> list[tuple[int, int]]:
    """The (rank, chunk) pieces a value holds, e.g.
    decode(piece(0,1,4) + piece(2,1,4), 4) == [(0,1), (2,1)].

    Raises ValueError for a value that is not a sum of distinct pieces (negative, or not an
    integer).
    """
    v = int(value)
    if v != value or v < 0:
        raise ValueError(f"{value!r} is not a sum of distinct pieces")
    out, bit = [], 0
    while v:
        if v & 1:
            out.append(divmod(bit, chunks))
        v >>= 1
        bit += 1
    return out


def cell_label(value, chunks: int) -> str:
    """Short text for a value: 'B₂' for chunk B of rank 2, 'B₀₁₃' for B₀ + B₁ + B₃, '·' for
    nothing."""
    held = decode(value, chunks)
    if not held:
        return "·"
    by_chunk: dict[int, list[int]] = {}
    for r, c in held:
        by_chunk.setdefault(c, []).append(r)
    parts = []
    for c, ranks in sorted(by_chunk.items()):
        letter = LETTERS[c] if c < len(LETTERS) else f"[{c}]"
        parts.append(letter + "".join(sub(r) for r in sorted(ranks)))
    return "+".join(parts)


def _draw_cell(ax, x, y, value, chunks, outline=False, undefined=False):
    w, h = 0.92, 0.8
    if undefined:
        ax.add_patch(Rectangle((x, y), w, h, fc="#eeeeee", ec="#999999", hatch="///", lw=1))
        ax.text(x + w / 2, y + h / 2, "?", ha="center", va="center", fontsize=10, color="#555555")
        return
    held = decode(value, chunks)
    if not held:
        ax.add_patch(Rectangle((x, y), w, h, fc="white", ec="#bbbbbb", ls="--", lw=1))
    else:
        ranks = sorted({r for r, _ in held})
        stripe = w / len(ranks)
        for i, r in enumerate(ranks):  # one vertical stripe per rank whose data the cell sums
            ax.add_patch(Rectangle((x + i * stripe, y), stripe, h, fc=rank_color(r), ec="none",
                                   alpha=0.9))
        ax.add_patch(Rectangle((x, y), w, h, fc="none", ec="black", lw=0.8))
        label = cell_label(value, chunks)
        ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", color="white",
                fontsize=10 if len(label) <= 3 else 8, fontweight="bold",
                path_effects=[patheffects.withStroke(linewidth=2, foreground="#222222")])
    if outline:
        ax.add_patch(Rectangle((x - 0.04, y - 0.04), w + 0.08, h + 0.08, fc="none", ec="black",
                               lw=2.5))


def draw_ranks(rows, chunks: int, title: str = "", ax=None, outline=None, undefined=(), width=None):
    """Every rank's data: row r is rank r, one cell per element of `rows[r]` (a tensor or list).

    outline:   {rank: index} cells to draw with a heavy border (e.g. the chunk just received)
    undefined: ranks whose data means nothing (e.g. non-destination ranks after `reduce`), drawn
               hatched
    """
    rows = [[int(v) for v in row] for row in rows]
    width = width or max([len(r) for r in rows] + [1])
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.75 * width, 0.5 + 0.5 * len(rows)))
    outline = outline or {}
    for r, row in enumerate(rows):
        y = len(rows) - 1 - r
        ax.text(-0.15, y + 0.4, f"rank {r}", ha="right", va="center", fontsize=9,
                color=rank_color(r), fontweight="bold")
        for i, value in enumerate(row):
            _draw_cell(ax, i, y, value, chunks, outline=outline.get(r) == i,
                       undefined=r in undefined)
    ax.set_xlim(-1.3, width + 0.1)
    ax.set_ylim(-0.2, len(rows))
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def draw_before_after(before, after, chunks: int, title: str, undefined_after=(),
                      notes=("before", "after")):
    """Two panels side by side: every rank's data before a collective and after it."""
    width = max(len(r) for r in list(before) + list(after))
    fig, (a, b) = plt.subplots(1, 2, figsize=(2.4 + 1.5 * width, 0.9 + 0.48 * len(before)))
    draw_ranks(before, chunks, notes[0], ax=a, width=width)
    draw_ranks(after, chunks, notes[1], ax=b, undefined=undefined_after, width=width)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def draw_ring_steps(states, chunks: int, titles, outlines=None, columns: int = 4):
    """One panel per recorded state of a ring all-reduce (or any step-by-step collective).

    states:   a list of per-rank data (as `draw_ranks` takes), in the order recorded
    titles:   one title per state
    outlines: one {rank: chunk} per state, the cells to emphasise (or None)
    """
    count = len(states)
    rows = (count + columns - 1) // columns
    width = max(len(r) for s in states for r in s)
    size = (columns * (0.8 + 0.55 * width), rows * (0.75 + 0.42 * len(states[0])))
    fig, axes = plt.subplots(rows, columns, figsize=size, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < count:
            draw_ranks(states[i], chunks, titles[i], ax=ax, width=width,
                       outline=(outlines[i] if outlines else None))
        else:
            ax.axis("off")
    fig.tight_layout()
    return fig


def draw_alpha_beta_fit(sizes, median_s, p10_s, p90_s, alpha: float, beta: float,
                        hidden_bytes: int = 576 * 4):
    """Measured 2-rank all-reduce times (median, p10–p90 bars; seconds) against the α–β model
    fitted to them, with its two terms and the crossover, log-log. Why this picture: it shows at
    a glance which sizes are latency-bound (flat, near 2α) and which bandwidth-bound (N·β), and
    where one hidden state of SmolLM2-135M (`hidden_bytes`) falls."""
    us = 1e6
    grid = [2 ** (k / 4) for k in range(8, 4 * 26 + 1)]         # 4 B ... 64 MiB, smooth
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.errorbar(sizes, [t * us for t in median_s], fmt="o", capsize=3,
                yerr=[[(t - lo) * us for t, lo in zip(median_s, p10_s)],
                      [(hi - t) * us for t, hi in zip(median_s, p90_s)]],
                label="measured: gloo all-reduce, 2 ranks (median, p10–p90)")
    ax.set(xscale="log", yscale="log")
    ax.plot(grid, [cost.ring_all_reduce_time(s, 2, alpha, beta) * us for s in grid], "-",
            label=r"model $2\alpha + N\beta$")
    ax.axhline(2 * alpha * us, color="gray", ls="--", lw=1, label=r"latency term $2\alpha$")
    ax.plot(grid, [s * beta * us for s in grid], color="gray", ls=":", lw=1,
            label=r"bandwidth term $N\beta$")
    ax.axvline(2 * cost.crossover_bytes(alpha, beta), color="C3", lw=1,
               label=r"crossover $N = 2\alpha/\beta$")
    ax.axvline(hidden_bytes, color="C2", lw=1, ls="-.",
               label=f"{hidden_bytes // 4} floats (one hidden state)")
    ax.set(xlabel="bytes per rank N", ylabel="time per all-reduce (µs)",
           ylim=(min(p10_s) * us / 3, max(p90_s) * us * 2),
           title="α–β model fitted to this machine")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def draw_all_reduce_bench(median_us: dict, title: str, impls=("gloo", "ring", "tplab")):
    """`bench/collectives.py`'s figures as grouped bars: per size, one bar per implementation
    (median µs per all-reduce, log scale). `median_us` maps (impl, bytes) to microseconds."""
    sizes = sorted({nbytes for _, nbytes in median_us})
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(impls)
    for i, impl in enumerate(impls):
        offset = (i - (len(impls) - 1) / 2) * width
        ax.bar([j + offset for j in range(len(sizes))], [median_us[(impl, s)] for s in sizes],
               width, label=impl)
    ax.set_xticks(range(len(sizes)), [f"{s:,} B" for s in sizes])
    ax.set(yscale="log", ylabel="median µs per all-reduce", title=title)
    ax.legend()
    return fig


def draw_prediction_check(measured_s: dict, fit_sizes, test_sizes, predict_s, bound_bytes: float,
                          title: str = "gloo all-reduce, 2 ranks: prediction vs measurement"):
    """Exercise 01.2's picture: measured all-reduce times (the sizes the fit used, and the ones
    held out to test it) against the learner's `predict_s(nbytes)` and their latency-bound
    threshold, log-log. Why: a formula that is off by a factor, or a threshold on the wrong side
    of the bend, shows at a glance. `measured_s` maps bytes to seconds."""
    us = 1e6
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.loglog(fit_sizes, [measured_s[s] * us for s in fit_sizes], "o",
              label="measured, used for the fit")
    ax.loglog(test_sizes, [measured_s[s] * us for s in test_sizes], "s",
              label="measured, predicted")
    grid = [2 ** (k / 4) for k in range(16, 4 * 24)]
    ax.loglog(grid, [predict_s(s) * us for s in grid], "-", label="your predict_time")
    ax.axvline(bound_bytes, color="C3", lw=1, label="your latency_bound_below(2)")
    ax.set(xlabel="bytes per rank", ylabel="µs per all-reduce", title=title)
    ax.legend(fontsize=8)
    return fig

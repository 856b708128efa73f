"""Pictures of tensor parallelism: which rank holds which block of each weight, and where
activations are whole or partial.

Conventions (the colours of `tplab.viz`): a block in a rank's colour is that rank's
*shard* (its own piece, nobody else has it); grey is *whole* (the same full tensor on
every rank); a hatched block in a rank's colour is a *partial* sum (full-sized, but only
that rank's contribution: the ranks' partials must be added up).

Matrices are drawn the way the lesson writes the maths, Y = X W with W of shape
[in, out] (`nn.Linear` stores Wᵀ, [out, in]): a *column* split divides `out`, a *row*
split divides `in`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, Rectangle

from tplab.layers.heads import kv_of_heads
from tplab.tp.plan import attention_shards
from tplab.tp.split import shard_sizes
from tplab.viz.ranks import rank_color, sub

__all__ = ["sub", "draw_column_and_row", "draw_mlp_weights", "draw_head_plan", "draw_head_plans",
           "draw_params_per_rank", "draw_mlp_flow", "draw_vocab_split"]

WHOLE = "#BDBDBD"


def _rank_legend(ax, n, x, y, dy=0.3):
    for r in range(n):
        ax.add_patch(Rectangle((x, y - r * dy - 0.1), 0.2, 0.2, fc=rank_color(r), ec="black",
                               lw=0.6))
        ax.text(x + 0.3, y - r * dy, f"rank {r}", fontsize=8, va="center")


def _box(ax, x, y, w, h, color=WHOLE, hatch=None, label="", fontsize=9, text_color="black"):
    if hatch:
        ax.add_patch(Rectangle((x, y), w, h, fc="white", ec=color, hatch=hatch, lw=0))
        ax.add_patch(Rectangle((x, y), w, h, fc=color, alpha=0.35, ec="none"))
    else:
        ax.add_patch(Rectangle((x, y), w, h, fc=color, ec="none", alpha=0.9))
    ax.add_patch(Rectangle((x, y), w, h, fc="none", ec="black", lw=0.8))
    if label:
        ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=fontsize,
                color=text_color)


def _arrow(ax, x0, y0, x1, y1, text="", color="black"):
    ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12,
                                 color=color, lw=1.2))
    if text:
        ax.text((x0 + x1) / 2, max(y0, y1) + 0.12, text, ha="center", va="bottom", fontsize=8)


def _split(ax, x, y, w, h, sizes, axis, labels=None, hatch=None):
    """A w×h matrix cut into len(sizes) blocks along `axis` ("columns" or "rows"), block r in
    rank r's colour."""
    total, done = sum(sizes), 0
    for r, size in enumerate(sizes):
        label = labels[r] if labels else ""
        if axis == "columns":
            bw = w * size / total
            _box(ax, x + w * done / total, y, bw, h, rank_color(r), hatch, label,
                 text_color="white")
        else:  # rows, rank 0 on top
            bh = h * size / total
            _box(ax, x, y + h - h * (done + size) / total, w, bh, rank_color(r), hatch, label,
                 text_color="white")
        done += size


def _finish(ax, title, xlim, ylim):
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def draw_column_and_row(n: int = 3):
    """Y = XW split two ways over n ranks: by W's columns (Y comes out in shards) and by
    W's rows (X must come in shards, Y comes out as n partial sums to add up)."""
    subs = [sub(r + 1) for r in range(n)]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9.0, 4.6))
    # column split: X whole, W = [W_1 ... W_n], Y = [XW_1 ... XW_n]
    _box(top, 0, 0, 1.6, 1.2, label="X\nwhole")
    top.text(1.85, 0.6, "·", fontsize=18, ha="center", va="center")
    _split(top, 2.1, -0.2, 2.2, 1.6, [1] * n, "columns", [f"W{s}" for s in subs])
    top.text(4.55, 0.6, "=", fontsize=14, ha="center", va="center")
    _split(top, 4.8, 0, 2.2, 1.2, [1] * n, "columns", [f"XW{s}" for s in subs])
    top.text(7.2, 0.6,
             f"Y = [XW₁ … XW{subs[-1]}]\nrank r holds block r+1\nof W and of Y:\nno communication",
             fontsize=9, va="center")
    _rank_legend(top, n, 9.4, 1.1)
    _finish(top, "column split: W = [W₁ … Wₙ]", (-0.2, 10.6), (-0.45, 1.65))
    # row split: X = [X_1 ... X_n], W = [W_1; ...; W_n], Y = sum_i X_i W_i
    _split(bottom, 0, 0, 1.6, 1.2, [1] * n, "columns", [f"X{s}" for s in subs])
    bottom.text(1.85, 0.6, "·", fontsize=18, ha="center", va="center")
    _split(bottom, 2.1, -0.2, 2.2, 1.6, [1] * n, "rows", [f"W{s}" for s in subs])
    bottom.text(4.55, 0.6, "=", fontsize=14, ha="center", va="center")
    step = 0.16
    for r in reversed(range(n)):  # n full-size partial sums, stacked like cards
        _box(bottom, 4.8 + step * r, -step * r + step * (n - 1) / 2, 1.6, 1.0, rank_color(r), "///",
             f"X{subs[r]}W{subs[r]}" if r == 0 else "")
    _arrow(bottom, 6.55 + step * (n - 1), 0.6, 8.05, 0.6, "Σ (all-reduce)")
    _box(bottom, 8.15, 0.1, 1.4, 1.0, label="Y\nwhole")
    bottom.text(5.2, -0.35, "partial sums, one per rank", fontsize=8, ha="center", va="top")
    _finish(bottom, "row split: W = [W₁; …; Wₙ] (stacked), X = [X₁ … Xₙ], Y = Σᵢ XᵢWᵢ",
            (-0.2, 10.6), (-0.7, 1.65))
    fig.tight_layout()
    return fig


def draw_mlp_weights(hidden: int, ffn: int, n: int, sizes: list[int] | None = None):
    """The SwiGLU MLP's three weights over n ranks: gate and up split by columns (FFN
    features), down by rows (the same FFN features), drawn to scale."""
    sizes = sizes or shard_sizes(ffn, n)
    scale = 3.0 / max(hidden, ffn)
    h, f = hidden * scale, ffn * scale
    fig, ax = plt.subplots(figsize=(9.5, 3.6))
    labels = [f"{s}" for s in sizes]
    x = 0.0
    for name in ("gate", "up"):
        _split(ax, x, 0, f, h, sizes, "columns", labels)
        ax.text(x + f / 2, h + 0.12, f"W_{name}  [{hidden} × {ffn}]\ncolumn split", ha="center",
                va="bottom", fontsize=9)
        x += f + 0.5
    _split(ax, x, h - f, h, f, sizes, "rows", labels)
    ax.text(x + h / 2, h + 0.12, f"W_down  [{ffn} × {hidden}]\nrow split", ha="center", va="bottom",
            fontsize=9)
    for r in range(n):
        ax.text(x + h + 0.3, h - 0.35 - 0.35 * r, f"rank {r}: {sizes[r]} FFN features",
                color=rank_color(r), fontsize=9, fontweight="bold", va="center")
    _finish(ax, f"who holds what: SwiGLU MLP, hidden {hidden}, FFN {ffn}, {n} ranks",
            (-0.2, x + h + 2.6), (h - f - 0.2, h + 0.8))
    fig.tight_layout()
    return fig


def draw_head_plan(n_heads: int, n_kv_heads: int, parts: int, ax=None):
    """One row per rank: the query heads it computes and the key/value heads it keeps (the
    sharding plan's, `tplab.tp.attention_shards`).

    Thick lines separate KV groups (the query heads that share one KV head). A KV head
    filled on several rows is replicated on those ranks.
    """
    shards = attention_shards(n_heads, n_kv_heads, 1, parts)
    plan = [{"q": s.q_heads, "kv": s.kv_heads} for s in shards]
    kv_of = kv_of_heads(n_heads, n_kv_heads).tolist()
    if ax is None:
        _, ax = plt.subplots(figsize=(0.42 * (n_heads + n_kv_heads) + 2.2, 0.5 * parts + 0.9))
    kv_x = n_heads + 1.0
    for r, p in enumerate(plan):
        y = parts - 1 - r
        ax.text(-0.2, y + 0.4, f"rank {r}", ha="right", va="center", fontsize=9,
                color=rank_color(r), fontweight="bold")
        for j in range(n_heads):
            mine = p["q"][0] <= j < p["q"][1]
            ax.add_patch(Rectangle((j, y), 0.92, 0.8, fc=rank_color(r) if mine else "white",
                                   ec="black" if mine else "#cccccc", lw=0.8))
            if mine:
                ax.text(j + 0.46, y + 0.4, f"q{j}", ha="center", va="center", fontsize=7,
                        color="white")
        for k in range(n_kv_heads):
            mine = p["kv"][0] <= k < p["kv"][1]
            ax.add_patch(Rectangle((kv_x + k, y), 0.92, 0.8, fc=rank_color(r) if mine else "white",
                                   ec="black" if mine else "#cccccc", lw=0.8, hatch=None))
            if mine:
                ax.text(kv_x + k + 0.46, y + 0.4, f"kv{k}", ha="center", va="center", fontsize=7,
                        color="white")
        ax.text(kv_x + n_kv_heads + 0.2, y + 0.4,
                f"{p['q'][1] - p['q'][0]} q, {p['kv'][1] - p['kv'][0]} kv",
                fontsize=8, va="center")
    for j in (j for j in range(1, n_heads) if kv_of[j] != kv_of[j - 1]):  # a new KV group
        ax.plot([j - 0.04] * 2, [-0.15, parts - 0.05], color="black", lw=2)
    ax.text(n_heads / 2, parts + 0.05, "query heads (| = KV group)", ha="center", va="bottom",
            fontsize=8)
    ax.text(kv_x + n_kv_heads / 2, parts + 0.05, "KV heads", ha="center", va="bottom", fontsize=8)
    replicated = parts > n_kv_heads
    ranks = f"{parts} rank{'s' if parts > 1 else ''}"
    title = (f"{n_heads} query / {n_kv_heads} KV heads over {ranks}: "
             + ("KV heads replicated" if replicated else "KV groups split"))
    return _finish(ax, title, (-1.4, kv_x + n_kv_heads + 2.4), (-0.3, parts + 0.55))


def draw_head_plans(n_heads: int, n_kv_heads: int, degrees):
    """`draw_head_plan` for several tensor-parallel degrees, stacked."""
    degrees = list(degrees)
    fig, axes = plt.subplots(len(degrees), 1, figsize=(0.42 * (n_heads + n_kv_heads) + 3.2,
                                                       sum(0.5 * d + 0.8 for d in degrees)),
                             gridspec_kw={"height_ratios": [d + 1.6 for d in degrees]},
                             squeeze=False)
    for ax, d in zip(axes[:, 0], degrees):
        draw_head_plan(n_heads, n_kv_heads, d, ax=ax)
    fig.tight_layout()
    return fig


def draw_mlp_flow(n: int = 2, forward: str | None = None, backward: str | None = None,
                  title: str | None = None):
    """The tensor-parallel MLP as a flow, one lane per rank: x whole → f → column → shard →
    row → partial → g → y whole. `forward`/`backward`: optional captions (e.g. what a trace
    counted)."""
    fig, ax = plt.subplots(figsize=(9.6, 0.75 * n + 1.7))
    lane = lambda r: (n - 1 - r) * 0.9  # noqa: E731
    # (left, width, kind, label): kind "whole" | "op" | "shard" | "partial" | "comm"
    items = [(0.0, 0.7, "whole", "x"), (1.0, 0.5, "comm", "f"),
             (1.8, 1.3, "op", "gate, up\ncolumn-parallel"), (3.4, 1.3, "shard", "a{r}: shard"),
             (5.0, 1.3, "op", "down\nrow-parallel"), (6.6, 1.3, "partial", "y{r}: partial"),
             (8.2, 0.5, "comm", "g"), (9.0, 0.7, "whole", "y")]
    for r in range(n):
        y = lane(r)
        ax.text(-0.15, y + 0.3, f"rank {r}", ha="right", va="center", fontsize=9,
                color=rank_color(r), fontweight="bold")
        for left, width, kind, label in items:
            if kind == "whole":
                _box(ax, left, y, width, 0.6, label=label)
            elif kind == "shard":
                _box(ax, left, y, width, 0.6, rank_color(r), label=label.format(r=r),
                     text_color="white")
            elif kind == "partial":
                _box(ax, left, y, width, 0.6, rank_color(r), "///", label.format(r=r))
            elif kind == "op":
                ax.add_patch(Rectangle((left, y + 0.05), width, 0.5, fc="white", ec="#777777",
                                       lw=0.8, ls="--"))
                ax.text(left + width / 2, y + 0.3, label, ha="center", va="center", fontsize=7.5)
        for (l0, w0, _, _), (l1, _, k1, _) in zip(items, items[1:]):
            ax.add_patch(FancyArrowPatch((l0 + w0 + 0.02, y + 0.3), (l1 - 0.02, y + 0.3),
                                         arrowstyle="-|>", mutation_scale=9, lw=0.9, shrinkA=0,
                                         shrinkB=0))
    top, bottom = lane(0) + 0.6, lane(n - 1)
    for left, width, kind, name in items:
        if kind != "comm":
            continue
        x = left + width / 2
        fwd, bwd = ("identity", "all-reduce") if name == "f" else ("all-reduce", "identity")
        ax.add_patch(Rectangle((left, bottom - 0.05), width, top - bottom + 0.1, fc="#fff3c4",
                               ec="black", lw=1))
        ax.text(x, (top + bottom) / 2, name, ha="center", va="center", fontsize=13,
                fontweight="bold")
        ax.text(x, bottom - 0.12, f"fwd: {fwd}\nbwd: {bwd}", ha="center", va="top", fontsize=8)
    ax.text(4.05, top + 0.12, "no communication in between", ha="center", va="bottom", fontsize=8,
            style="italic")
    captions = [c for c in (forward and f"forward: {forward}",
                            backward and f"backward: {backward}") if c]
    if captions:
        ax.text(4.85, bottom - 0.62, "   |   ".join(captions), ha="center", va="top", fontsize=9)
    legend = ((None, WHOLE, "whole"), (None, rank_color(0), "shard"),
              ("///", rank_color(0), "partial"))
    for i, (hatch, color, word) in enumerate(legend):
        _box(ax, 10.0, top - 0.3 - 0.38 * i, 0.35, 0.26, color, hatch)
        ax.text(10.45, top - 0.17 - 0.38 * i, word, fontsize=8, va="center")
    _finish(ax, title or f"the column-then-row MLP on {n} rank{'s' if n > 1 else ''}", (-0.9, 11.1),
            (bottom - (0.95 if captions else 0.6), top + 0.4))
    return fig


def draw_vocab_split(vocab: int, n: int, sizes: list[int] | None = None):
    """Logits [tokens, vocab] split by vocabulary range, and the three [tokens] all-reduces
    that replace gathering them."""
    sizes = sizes or shard_sizes(vocab, n)
    fig, ax = plt.subplots(figsize=(9.5, 3.0))
    starts = [sum(sizes[:r]) for r in range(n)]
    labels = [f"ids {s}–{s + z - 1}" for s, z in zip(starts, sizes)]
    _split(ax, 0, 0, 6.0, 1.4, sizes, "columns", labels)
    ax.text(3.0, 1.5, f"logits [tokens × {vocab}]: rank r holds the columns of its ids",
            ha="center", va="bottom", fontsize=9)
    steps = [("max over my ids", "all-reduce max"),
             ("target's logit (its owner; 0 elsewhere)", "all-reduce sum"),
             ("Σ exp(z − max) over my ids", "all-reduce sum")]
    for i, (what, how) in enumerate(steps):
        y = 1.15 - 0.55 * i
        _arrow(ax, 6.15, y, 6.75, y)
        _box(ax, 6.85, y - 0.18, 0.35, 0.36, label="")
        ax.text(7.3, y, f"[tokens]: {what} → {how}", fontsize=8, va="center")
    ax.text(3.0, -0.2, "never gathered: tokens × vocab floats stay where they are", ha="center",
            va="top", fontsize=8, style="italic")
    _finish(ax, f"vocabulary-parallel cross-entropy over {n} ranks", (-0.2, 12.3), (-0.5, 1.9))
    return fig


def draw_params_per_rank(rows, dense_params: int,
                         title: str = "one SmolLM2-135M layer (attention + MLP)"):
    """Parameters per rank for each degree t: `rows` is [(t, [rank 0's, rank 1's, ...]), ...];
    one bar per rank in its colour, and dashed, the dense count / t (a perfect split)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    widest = max(len(params) for _, params in rows)
    for t, params in rows:
        for r, p in enumerate(params):
            ax.bar(t + (r - (t - 1) / 2) * 0.2, p / 1e6, width=0.18, color=rank_color(r),
                   label=f"rank {r}" if len(params) == widest else None)
        ax.plot([t - 0.45, t + 0.45], [dense_params / t / 1e6] * 2, "k--", lw=1,
                label="dense / t" if t == rows[0][0] else None)
    ax.set(xlabel="tensor-parallel degree t", ylabel="parameters per rank (M)",
           xticks=[t for t, _ in rows], title=title)
    ax.legend(fontsize=8)
    return fig

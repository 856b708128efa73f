"""Exercise 07.3's picture: the decode trade-off a deployment choice lives on.

Why this plot: for one layout, a bigger batch gives more tokens per second and a longer step
(time per output token) until the KV cache no longer fits; the latency target is a vertical
line. Each layout is a curve of its batches; points that do not fit are hollow; the choice is
the highest filled point left of the target line. Reads rows as `tplab.cost.plan_decode`
returns them.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

__all__ = ["draw_deployments"]


def draw_deployments(rows: list[dict], target_ms: float, chosen: dict | None = None,
                     title: str = "decode: tokens/s against time per token"):
    """rows: plan_decode rows for several batches; one curve per (tp, pp, dp), batches in
    order; hollow markers where a row does not fit; `chosen` ({"tp", "pp", "dp", "batch"})
    ringed. Returns the figure."""
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    layouts = sorted({(r["tp"], r["pp"], r["dp"]) for r in rows}, reverse=True)
    for i, layout in enumerate(layouts):
        mine = sorted((r for r in rows if (r["tp"], r["pp"], r["dp"]) == layout),
                      key=lambda r: r["batch"])
        color = f"C{i % 10}"
        ax.plot([r["ms_per_token"] for r in mine], [r["tokens_per_s"] for r in mine], "-",
                color=color, lw=1, label=f"tp={layout[0]} pp={layout[1]} dp={layout[2]}")
        for r in mine:
            ax.plot(r["ms_per_token"], r["tokens_per_s"], "o", ms=5, color=color,
                    mfc=color if r["fits"] else "white")
        if chosen is not None and layout == tuple(chosen[k] for k in ("tp", "pp", "dp")):
            pick = next((r for r in mine if r["batch"] == chosen["batch"]), None)
            if pick is not None:
                ax.plot(pick["ms_per_token"], pick["tokens_per_s"], "o", ms=14, mfc="none",
                        mec="black", mew=1.5)
                ax.annotate(f"batch {pick['batch']}", (pick["ms_per_token"], pick["tokens_per_s"]),
                            textcoords="offset points", xytext=(8, -14), fontsize=8)
    ax.axvline(target_ms, color="k", ls="--", lw=1, label=f"target {target_ms:g} ms")
    ax.set(xscale="log", yscale="log", xlabel="ms per token (each sequence)",
           ylabel="tokens/s (all sequences)", title=title)
    ax.plot([], [], "o", color="grey", mfc="white", label="does not fit")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig

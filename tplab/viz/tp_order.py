"""Exercise 03.3's picture: the bytes each rank hands to collectives for one MLP, row-then-column
(the learner's, traced) against column-then-row (traced beside it)."""
from __future__ import annotations

import matplotlib.pyplot as plt

__all__ = ["draw_order_bytes"]


def draw_order_bytes(row_first: list, column_first: list, m: int, hidden: int, ffn: int, t: int):
    """row_first, column_first: [(op, bytes)] as traced on one rank; stacked bars per order."""
    fig, ax = plt.subplots(figsize=(7, 2.6))
    orders = [("row, then column (yours)", row_first), ("column, then row (Megatron)",
                                                        column_first)]
    colors = {"all_reduce": "C3", "all_gather": "C1", "all_gather_into_tensor": "C1"}
    seen = set()
    for y, (name, calls) in enumerate(orders):
        left = 0
        for op, n in calls:
            label = op.replace("_into_tensor", "") if op not in seen else None
            seen.add(op)
            ax.barh(y, n, left=left, color=colors.get(op, "C7"), edgecolor="black", label=label)
            ax.text(left + n / 2, y, f"{op.replace('_into_tensor', '')}\n{n} B", ha="center",
                    va="center", fontsize=7)
            left += n
    ax.set_yticks(range(len(orders)), [n for n, _ in orders])
    ax.invert_yaxis()
    ax.set_xlabel("bytes this rank hands to collectives (payload, as traced)")
    ax.set_title(f"one MLP on {t} ranks: m = {m} tokens, hidden {hidden}, ffn {ffn}", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    fig.tight_layout()
    return fig

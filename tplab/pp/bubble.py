"""The pipeline bubble and the activations in flight, in closed form.

Two conventions are in print, and they differ a lot at small m; always say which.

* **Share of the step** (GPipe, Huang et al. 2019, arXiv:1811.06965): a step takes
  (m + p − 1) slots of t_f + t_b, of which p − 1 are idle on every rank, so the idle share is
  (p − 1) / (m + p − 1).
* **Over the ideal time** (Narayanan et al. 2021, arXiv:2104.04473; the Ultra-Scale Playbook):
  idle time divided by the useful compute time m·(t_f + t_b): (p − 1) / m.

Interleaving v chunks per rank shrinks each slot to (t_f + t_b)/v while the number of fill
and drain slots stays p − 1: (p − 1)/(v·m) over ideal, (p − 1)/(v·m + p − 1) of the step.
"""
from __future__ import annotations

from tplab.checks.forbid import guard  # lesson 05's checks hide these, even reloaded or held
from tplab.pp.schedules import SCHEDULES

__all__ = ["bubble", "inflight_formula"]


def bubble(p: int, m: int, v: int = 1, convention: str = "total") -> float:
    """The idle share of a pipeline step with equal stages ("total" or "ideal" convention)."""
    guard("tplab.pp.bubble.bubble")
    if p < 1 or m < 1 or v < 1:
        raise ValueError(f"need p, m, v >= 1, got p={p}, m={m}, v={v}")
    if convention == "total":
        return (p - 1) / (v * m + p - 1)
    if convention == "ideal":
        return (p - 1) / (v * m)
    raise ValueError(f"convention is 'total' (share of the step, GPipe) or 'ideal' "
                     f"(over the ideal time, Narayanan et al.), not {convention!r}")


def inflight_formula(name: str, p: int, m: int, rank: int, v: int = 1) -> int:
    """Peak micro-batches (times chunks) whose activations a rank holds at once."""
    guard("tplab.pp.bubble.inflight_formula")
    if name == "gpipe":
        return m
    if name == "1f1b":
        return min(p - rank, m)
    if name == "interleaved":
        return min(2 * (p - rank - 1) + (v - 1) * p + 1, v * m)
    raise ValueError(f"unknown schedule {name!r}: choose one of {', '.join(SCHEDULES)}")

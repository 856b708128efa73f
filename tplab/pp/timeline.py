"""Reading a pipeline step's timeline: busy, idle, and the bubble as measured.

Every rank records its own events (`tplab.pp.executor.Event`), timed from the barrier that
starts the step. Idle time is whatever is not forward or backward compute — waiting in a
receive is idle, and that wait *is* the bubble — so the measured bubble is

    1 − (compute time summed over ranks) / (ranks × step time)         (share of the step)
    (ranks × step time) / (compute time summed over ranks) − 1         (over the ideal time)

the two conventions of `tplab.pp.bubble`.
"""
from __future__ import annotations

from tplab.checks.forbid import guard  # lesson 05's predict check hides it, even reloaded or held

__all__ = ["busy", "makespan", "idle_fraction", "bubble_measured", "idle_periods"]


def busy(events) -> float:
    """Seconds of forward and backward compute in one rank's events."""
    return sum(e.end - e.start for e in events if e.kind in ("F", "B"))


def makespan(events_per_rank) -> float:
    """The step's length: from 0 (the barrier) to the last event's end on any rank."""
    return max(e.end for events in events_per_rank for e in events)


def idle_fraction(events_per_rank) -> float:
    """The bubble as a share of the step (GPipe's convention), measured."""
    total = len(events_per_rank) * makespan(events_per_rank)
    return 1 - sum(busy(events) for events in events_per_rank) / total


def bubble_measured(events_per_rank, convention: str = "total") -> float:
    """The measured bubble in either convention ("total" or "ideal")."""
    guard("tplab.pp.timeline.bubble_measured")
    idle = idle_fraction(events_per_rank)
    if convention == "total":
        return idle
    if convention == "ideal":
        return idle / (1 - idle)
    raise ValueError(f"convention is 'total' or 'ideal', not {convention!r}")


def idle_periods(events, end: float | None = None) -> list[tuple[float, float]]:
    """The gaps in one rank's compute, from 0 to `end` (default: its last event): its bubble."""
    spans = sorted((e.start, e.end) for e in events if e.kind in ("F", "B"))
    end = max((e.end for e in events), default=0.0) if end is None else end
    gaps, t = [], 0.0
    for start, stop in spans:
        if start > t:
            gaps.append((t, start))
        t = max(t, stop)
    return gaps + ([(t, end)] if end > t else [])

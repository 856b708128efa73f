"""One training step's timeline on a rank: when each collective started and ended, and marks.

Lesson 03 draws a tensor-parallel step beside lesson 02's data-parallel one. `StepClock`
subscribes to `tplab.comm.hooks` (the one instrumentation point, as `tplab.dp` does for its
buckets) and keeps every collective's start and end, plus named marks (`mark("backward")`);
`summary()` hands back picklable times in milliseconds from the clock's start. Between two
collectives a TP rank computes; inside one it computes nothing, since the all-reduces of f
and g are blocking calls whose result the next operation reads.

The model both steps train is `tplab.tp.blocks.residual_mlps`; `bucket_spans` reads
`DataParallel`'s events (launch and complete per bucket) for the share and the picture.
"""
from __future__ import annotations

import time

from tplab.comm import hooks

__all__ = ["StepClock", "blocked_share", "sent_bytes", "bucket_spans", "in_flight_share"]


class StepClock:
    """`with StepClock() as clock:` ... `clock.mark(name)` ...; then `clock.summary()`."""

    def __init__(self):
        self.calls: list[tuple[str, int, float, float]] = []
        self.marks: dict[str, float] = {}
        self.t0 = 0.0

    def _on(self, kind: str, call: hooks.Collective) -> None:
        if kind == "end":
            self.calls.append((call.op, call.nbytes, call.start, call.end))

    def __enter__(self) -> StepClock:
        self._subscription = hooks.subscribe(self._on)
        self.t0 = time.perf_counter()
        return self

    def mark(self, name: str) -> None:
        self.marks[name] = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.marks.setdefault("end", time.perf_counter())
        self._subscription.remove()

    def summary(self) -> dict:
        """{"calls": [(op, bytes, start ms, end ms)], "marks": {name: ms}}, from the start."""
        ms = lambda t: (t - self.t0) * 1e3  # noqa: E731
        return {"calls": [(op, n, ms(a), ms(b)) for op, n, a, b in sorted(self.calls,
                                                                       key=lambda c: c[2])],
                "marks": {k: ms(v) for k, v in self.marks.items()}}


def blocked_share(summary: dict, op: str = "all_reduce") -> float:
    """The share of the step (start to the "end" mark) this rank spent inside blocking `op`s."""
    inside = sum(b - a for o, _, a, b in summary["calls"] if o == op)
    return inside / summary["marks"]["end"]


def sent_bytes(summary: dict, op: str = "all_reduce") -> int:
    """The payload bytes of every `op` in a `StepClock.summary()` (what the rank handed over)."""
    return sum(n for o, n, _, _ in summary["calls"] if o == op)


def bucket_spans(events: list) -> dict[int, tuple[float, float]]:
    """{bucket: (launch, complete)} from `DataParallel`'s events (what, bucket, time); buckets
    never seen complete are left out."""
    launch = {b: t for k, b, t in events if k == "launch"}
    complete = {b: t for k, b, t in events if k == "complete"}
    return {b: (launch[b], complete[b]) for b in sorted(launch) if b in complete}


def in_flight_share(events: list, until: float) -> float:
    """Of the time `DataParallel`'s buckets spent in flight (launch to complete, `events` in ms),
    the share before `until` (the end of backward): communication that overlapped compute."""
    spans = bucket_spans(events).values()
    total = sum(b - a for a, b in spans)
    hidden = sum(max(0.0, min(b, until) - a) for a, b in spans)
    return hidden / total if total else 0.0

"""Count every collective and point-to-point call a rank makes, with the bytes it moves.

Why: every parallel scheme in the course has a communication formula (a ring all-reduce
sends 2(n-1)/n·N bytes per rank; a tensor-parallel MLP does one all-reduce each way).
The tracer checks those formulas against what the code actually did. It is a subscriber of
`tplab.comm.hooks`: it sees tplab.comm's collectives and, for the duration of the `with`
block, the calls made straight to `torch.distributed`, in this process only, so use it inside
the function you launch: each rank counts its own calls. It counts the calls of *every thread*
of the process, not only of the thread that opened the block (tplab's earlier tracer counted
the opening thread's alone): a helper thread's collectives are the rank's traffic too.
tplab's own code leaves its internal calls out with `hooks.quiet()` (per thread); a learner's
code cannot: `quiet()` refuses callers outside tplab, so a graded answer cannot hide traffic.

    with tplab.comm.trace() as t:
        dist.all_reduce(x)
    t.count("all_reduce"), t.bytes("all_reduce")
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter

from tplab.comm import hooks

__all__ = ["Call", "Trace", "trace"]


@dataclasses.dataclass
class Call:
    op: str        # e.g. "all_reduce", "send"
    nbytes: int    # payload: the tensor handed to the call (the input, for gathers and scatters)
    impl: str      # "torch" or the tplab implementation that did the work ("shm", "ring", "none")


class Trace:
    """The calls one rank made inside a `trace()` block, in the order they started."""

    def __init__(self):
        self.calls: list[Call] = []

    def record(self, op: str, nbytes: int, impl: str = "torch") -> None:
        self.calls.append(Call(op, int(nbytes), impl))

    def count(self, op: str | None = None) -> int:
        return sum(1 for c in self.calls if op is None or c.op == op)

    def bytes(self, op: str | None = None) -> int:
        return sum(c.nbytes for c in self.calls if op is None or c.op == op)

    def counts(self) -> dict[str, int]:
        return dict(Counter(c.op for c in self.calls))

    def summary(self) -> dict[str, dict[str, int]]:
        """{op: {"calls": n, "bytes": b}}: small and picklable, to return from a rank."""
        out: dict[str, dict[str, int]] = {}
        for c in self.calls:
            entry = out.setdefault(c.op, {"calls": 0, "bytes": 0})
            entry["calls"] += 1
            entry["bytes"] += c.nbytes
        return out

    def _on_collective(self, kind: str, call: hooks.Collective) -> None:
        if kind == "start":
            self.record(call.op, call.nbytes, call.impl)


@contextlib.contextmanager
def trace():
    """Record this process's communication calls, from any of its threads, until the block
    ends; yields a Trace."""
    t = Trace()
    with hooks.subscribe(t._on_collective):
        yield t

"""Time inside all-reduces, split into communicating and waiting for the slowest rank.

Why: a rank's time inside an all-reduce has two parts. First, waiting for the last rank to
arrive: load imbalance (uneven shards, a core busy elsewhere), which no faster all-reduce
would remove. Then the collective itself, once every rank is there: latency and transfer,
the cost of communicating, and what a token would save if all-reduces were instantaneous.
The last rank to arrive skips the first part, so for each call the *minimum* over the ranks
is the communication, and each rank's excess over it is its waiting.

    with AllReduceClock() as clock:       # on every rank, around the same work
        ...
    split = clock.split()                 # a collective: every rank calls it
    split["comm_s"], split["wait_s"]      # this rank's seconds of each
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from tplab.comm import hooks

__all__ = ["AllReduceClock"]


class AllReduceClock:
    """Time every blocking `tplab.comm.all_reduce` made inside the `with` block, whoever makes it
    (tplab.tp, the token picker), and nothing else: a subscriber of `tplab.comm.hooks`, start to
    end of each call, on any thread of this process. Not timed: calls made straight to
    torch.distributed, `async_op=True` all-reduces (their time is spent elsewhere, overlapped)
    and `ring_all_reduce` (lesson 01's send/recv ring, which reports impl "ring"): the clock
    measures the all-reduce the model's layers pay for."""

    def __init__(self):
        self.durations: list[float] = []
        self._subscription = None

    def _on_collective(self, kind: str, call: hooks.Collective) -> None:
        if (kind == "end" and call.op == "all_reduce" and not call.async_op
                and call.impl != "ring"):  # every other impl is comm.all_reduce's route
            self.durations.append(call.end - call.start)

    def __enter__(self) -> AllReduceClock:
        self._subscription = hooks.subscribe(self._on_collective, direct=False)
        return self

    def __exit__(self, *exc) -> None:
        self._subscription.remove()

    def reset(self) -> None:
        self.durations.clear()

    @property
    def total_s(self) -> float:
        return sum(self.durations)

    def split(self, group=None) -> dict:
        """{"calls", "total_s", "comm_s", "wait_s"} for this rank: the per-call minimum over the
        group's ranks is communication, the rest waiting (on a single rank both are 0). Every
        rank of `group` must call it, after the same all-reduces."""
        mine = torch.tensor(self.durations, dtype=torch.float64)
        n = dist.get_world_size(group) if dist.is_initialized() else 1
        if n == 1:  # nothing to wait for or send: the calls return at once (their cost is compute)
            return {"calls": len(mine), "total_s": float(mine.sum()), "comm_s": 0.0, "wait_s": 0.0}
        counts = [torch.zeros(1, dtype=torch.int64) for _ in range(n)]
        dist.all_gather(counts, torch.tensor([len(mine)]), group=group)
        if len({int(c) for c in counts}) != 1:
            raise RuntimeError(f"ranks timed different numbers of all-reduces "
                               f"({[int(c) for c in counts]}): time the same work on every rank")
        every = [torch.empty_like(mine) for _ in range(n)]
        dist.all_gather(every, mine, group=group)
        communicating = torch.stack(every).min(dim=0).values
        return {"calls": len(mine), "total_s": float(mine.sum()),
                "comm_s": float(communicating.sum()), "wait_s": float((mine - communicating).sum())}

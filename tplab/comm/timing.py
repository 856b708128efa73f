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

import time

import torch
import torch.distributed as dist

from tplab import comm


class AllReduceClock:
    """Time every `tplab.comm.all_reduce` call made inside the `with` block (tplab.tp and the
    token picker call it through the module, so replacing the module's function sees them all)."""

    def __init__(self):
        self.durations: list[float] = []

    def __enter__(self) -> "AllReduceClock":
        self._original = original = comm.all_reduce

        def timed(tensor, group=None, op="sum"):
            start = time.perf_counter()
            original(tensor, group, op)
            self.durations.append(time.perf_counter() - start)
            return tensor

        comm.all_reduce = timed
        return self

    def __exit__(self, *exc) -> None:
        comm.all_reduce = self._original

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
        if n == 1:  # nothing to wait for and nothing to send: the calls return at once (their cost is compute)
            return {"calls": len(mine), "total_s": float(mine.sum()), "comm_s": 0.0, "wait_s": 0.0}
        counts = [torch.zeros(1, dtype=torch.int64) for _ in range(n)]
        dist.all_gather(counts, torch.tensor([len(mine)]), group=group)
        if len({int(c) for c in counts}) != 1:
            raise RuntimeError(f"ranks timed different numbers of all-reduces ({[int(c) for c in counts]}): "
                               "time the same work on every rank")
        every = [torch.empty_like(mine) for _ in range(n)]
        dist.all_gather(every, mine, group=group)
        communicating = torch.stack(every).min(dim=0).values
        return {"calls": len(mine), "total_s": float(mine.sum()),
                "comm_s": float(communicating.sum()), "wait_s": float((mine - communicating).sum())}

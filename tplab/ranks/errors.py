"""How a launch reports failure: which rank broke first, and why.

When one rank raises, its peers blocked in a collective fail a moment later with
"Connection closed by peer". Those are echoes, not causes. Every failure carries the
time it happened (a monotonic clock shared by all processes on the machine) and
whether it looks like an echo; the root cause is the earliest failure that is not one.
"""
from __future__ import annotations

import dataclasses
import re
import signal
import traceback

from tplab.ranks.output import stack_dump

_ECHO = re.compile(
    r"connection closed|connection reset|broken pipe|ECONNRESET|EPIPE|"
    r"Connection refused|peer closed|remote process exited|socket closed",
    re.IGNORECASE,
)


@dataclasses.dataclass
class Failure:
    rank: int
    type: str
    message: str
    traceback: str
    when: float  # time.monotonic() at the failure (the parent's clock for a dead rank)
    echo: bool   # looks like a consequence of another rank's failure

    @classmethod
    def from_exception(cls, rank: int, exc: BaseException, when: float) -> "Failure":
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        message = str(exc)
        return cls(rank, type(exc).__name__, message, text, when, bool(_ECHO.search(message)))

    @classmethod
    def died(cls, rank: int, exitcode: int | None) -> "Failure":
        import time
        if exitcode is not None and exitcode < 0:
            try:
                how = f"was killed by {signal.Signals(-exitcode).name}"
            except ValueError:
                how = f"was killed by signal {-exitcode}"
        else:
            how = f"exited with status {exitcode}"
        message = f"rank {rank} {how} without reporting a result or an exception"
        return cls(rank, "RankDied", message, "", time.monotonic(), False)

    def headline(self) -> str:
        return f"{self.type}: {self.message}".strip()


def choose_root_cause(failures: dict[int, Failure]) -> Failure:
    """The earliest failure that is not an echo; the earliest of all if every one is."""
    return min(failures.values(), key=lambda f: (f.echo, f.when, f.rank))


class WorkerError(RuntimeError):
    """A launched rank failed, or ranks were still running at the deadline.

    Attributes: `rank` (the root-cause rank, or None on a timeout), `failures`
    (every rank's Failure), `stuck` (ranks still running at the deadline), and on a
    timeout `returned` (ranks whose function had returned), `joining` (still inside
    init_process_group: the group never formed), `waiting` (stuck in a collective),
    `computing` (stuck elsewhere) and `suspects` (where to look first: the computing
    ranks, else the joining ones, else the waiting ones).
    """

    def __init__(self, message: str, rank=None, failures=None, stuck=()):
        super().__init__(message)
        self.rank = rank
        self.failures = failures or {}
        self.stuck = list(stuck)
        self.suspects: list[int] = []
        self.returned: list[int] = []
        self.waiting: list[int] = []
        self.computing: list[int] = []
        self.joining: list[int] = []

    @classmethod
    def from_failures(cls, root: Failure, failures: dict[int, Failure]) -> "WorkerError":
        lines = [f"rank {root.rank} failed first: {root.headline()}"]
        others = [f for r, f in sorted(failures.items()) if r != root.rank]
        for f in others:
            lines.append(f"  (rank {f.rank} then failed too: {_first_line(f.headline())})")
        if root.traceback:
            lines += ["", f"--- traceback from rank {root.rank} ---", root.traceback.rstrip()]
        return cls("\n".join(lines), rank=root.rank, failures=failures)

    @classmethod
    def timed_out(cls, timeout: float, stuck: list[int], stacks: dict[int, str],
                  failures: dict[int, Failure], returned=()) -> "WorkerError":
        """Say which ranks returned, which were waiting in a collective, which were computing,
        and what that pattern usually means."""
        dumps = {r: stack_dump(stacks.get(r, "")) for r in stuck}
        # Still inside init_process_group: the group never formed (a rank slow to start, or gone).
        joining = [r for r in stuck if "init_process_group" in dumps[r]]
        # A rank whose innermost frame is in torch.distributed (or tplab.comm) waits for a peer.
        waiting = [r for r in stuck
                   if r not in joining and _in_collective(_innermost_frame(dumps[r]))]
        computing = [r for r in stuck if r not in waiting + joining and dumps[r]]
        silent = [r for r in stuck if not dumps[r]]  # wrote no stack: we cannot tell
        returned = [r for r in returned if r not in stuck]
        lines = [f"launch timed out after {timeout:g} s; still running: {_ranks(stuck)} (killed)."]
        if returned:
            lines.append(f"  returned from your function: {_ranks(returned)}")
        if joining:
            lines.append(f"  still joining the group (init_process_group): {_ranks(joining)}")
        if waiting:
            lines.append(f"  waiting in a collective:     {_ranks(waiting)}")
        if computing:
            lines.append(f"  computing (not communicating): {_ranks(computing)}")
        if silent:
            lines.append(f"  wrote no stack when asked:   {_ranks(silent)}")
        if joining and computing:
            lines.append(f"{_ranks(joining).capitalize()} waited in init_process_group for "
                         f"{_ranks(computing)}, which never called it: look at "
                         f"{_ranks(computing)} first (its stack is below).")
        else:
            lines.append(_JOINING if joining and not waiting else
                         _advice(waiting, computing + silent, returned, failures))
        for r, f in sorted(failures.items()):
            lines.append(f"  rank {r} had failed: {_first_line(f.headline())}")
        suspects = computing or silent or joining or waiting
        for r in suspects:
            if dumps[r]:
                lines += ["", f"--- where rank {r} was ---", dumps[r].rstrip()]
        err = cls("\n".join(lines), failures=failures, stuck=stuck)
        err.suspects = suspects
        err.returned, err.waiting, err.computing = returned, waiting, computing
        err.joining = joining
        return err


_JOINING = ("The ranks never finished forming their group: init_process_group returns only when "
            "every rank has called it. A rank that started late (a busy machine) or died before "
            "joining holds the others there, before your function runs: give the launch more "
            "time (timeout=...), or look at the rank that is missing.")


def _advice(waiting, computing, returned, failures) -> str:
    """What the pattern of stuck ranks usually means, and what to do."""
    if waiting and computing:
        return (f"{_ranks(waiting).capitalize()} waited in a collective for {_ranks(computing)}, "
                f"which never joined it: look at {_ranks(computing)} first (its stack is below).")
    if waiting and returned:
        return (f"{_ranks(returned).capitalize()} returned without calling the collective that "
                f"{_ranks(waiting)} waited in: every rank must call the same collectives in the "
                f"same order (look for a collective inside an `if rank == ...` or a loop whose "
                f"length differs by rank).")
    if waiting and failures:
        return "A rank failed while its peers waited for it in a collective: see the failure below."
    if waiting:
        return ("Every running rank was waiting in a collective: they called different "
                "collectives, or the same ones in a different order, or with different sizes. "
                "debug=True (TORCH_DISTRIBUTED_DEBUG=DETAIL) names a mismatch at once.")
    return ("No rank was waiting for another: the work itself did not finish in time. Give it "
            "more time (timeout=...), or less work; a rank stuck inside a matrix product with "
            "threads > 1 after fork is the fork-after-OpenMP hang "
            "(launch(..., start_method='forkserver') avoids it, and is the default for "
            "threads > 1).")


def _in_collective(frame: str) -> bool:
    return any(part in frame for part in ("torch/distributed", "tplab/comm", "torch\\distributed"))


def _ranks(ranks) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(str(r) for r in ranks)


def _innermost_frame(dump: str) -> str:
    return next((line for line in dump.splitlines() if line.strip().startswith("File ")), "")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text

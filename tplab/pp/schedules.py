"""Pipeline schedules as lists: what each rank computes, in order, and nothing else.

A schedule is a plan per rank — `[F0, F1, B0, F2, B1, B2]` — of forward (F) and backward (B)
passes over micro-batches. Writing it down as data, apart from the code that runs it
(`tplab.pp.executor`), makes the three schedules of lesson 05 comparable at a glance, lets a
test hold them against `torch.distributed.pipelining`, and lets the peak number of
micro-batches in flight (activations kept for a backward still to come) be read off the list.

* GPipe (Huang et al. 2019): every forward, then every backward. m micro-batches in flight.
* 1F1B (PipeDream-Flush: Narayanan et al., ICML 2021, arXiv:2006.09503): a warm-up of
  p − rank − 1 forwards, then one forward and one backward in turn. Same bubble as GPipe, at
  most p − rank in flight.
* Interleaved 1F1B (Megatron-LM: Narayanan et al. 2021, arXiv:2104.04473): each rank holds v
  chunks of layers (virtual stage s = chunk·p + rank), so the pipeline fills v times faster:
  bubble ÷ v, traffic × v.
"""
from __future__ import annotations

from typing import NamedTuple

from tplab.checks.forbid import guard  # lesson 05's checks hide these, even reloaded or held

__all__ = ["Action", "gpipe", "one_f_one_b", "interleaved_1f1b", "schedule", "peak_inflight",
           "SCHEDULES"]


class Action(NamedTuple):
    """One pass of one micro-batch through one of this rank's chunks of layers."""
    kind: str        # "F" (forward) or "B" (backward)
    micro: int       # which micro-batch, 0 .. m-1
    chunk: int = 0   # which of this rank's v chunks (0 unless interleaved)

    def __str__(self) -> str:
        return f"{self.kind}{self.micro}" + (f".{self.chunk}" if self.chunk else "")

    __repr__ = __str__


def _check(p: int, m: int, rank: int, v: int = 1) -> None:
    if p < 1 or m < 1 or v < 1:
        raise ValueError(f"need p, m, v >= 1, got p={p}, m={m}, v={v}")
    if not 0 <= rank < p:
        raise ValueError(f"rank {rank} is not a stage of a {p}-stage pipeline (0..{p - 1})")


def gpipe(p: int, m: int, rank: int) -> list[Action]:
    """All forwards, then all backwards (in the same micro-batch order)."""
    guard("tplab.pp.schedules.gpipe")
    _check(p, m, rank)
    return [Action("F", i) for i in range(m)] + [Action("B", i) for i in range(m)]


def one_f_one_b(p: int, m: int, rank: int) -> list[Action]:
    """Warm up with p − rank − 1 forwards, alternate F and B, then drain the backwards.

    The last stage (rank p − 1) warms up with none: it can run a micro-batch's backward
    as soon as its forward is done, which frees that micro-batch's activations at once.
    """
    guard("tplab.pp.schedules.one_f_one_b")
    _check(p, m, rank)
    warmup = min(p - rank - 1, m)
    actions = [Action("F", i) for i in range(warmup)]
    for i in range(m - warmup):
        actions += [Action("F", warmup + i), Action("B", i)]
    return actions + [Action("B", i) for i in range(m - warmup, m)]


def interleaved_1f1b(p: int, m: int, v: int, rank: int) -> list[Action]:
    """Megatron-LM's interleaved 1F1B: v chunks per rank, micro-batches in groups of p.

    The k-th forward on a rank goes through chunk (k mod p·v) // p, for micro-batch
    (k // p·v)·p + k mod p; backwards visit the chunks in reverse. Warm-up:
    2·(p − rank − 1) + (v − 1)·p forwards, capped at v·m — torch's ScheduleInterleaved1F1B
    convention, also when m = p (classic Megatron-LM ran every forward first there).
    """
    guard("tplab.pp.schedules.interleaved_1f1b")
    _check(p, m, rank, v)
    if m % p:
        raise ValueError(f"interleaved 1F1B needs the micro-batches in groups of p: m={m} is "
                         f"not a multiple of p={p}")
    total = m * v

    def action(kind: str, k: int) -> Action:
        group, k_in = divmod(k, p * v)
        chunk = k_in // p
        return Action(kind, group * p + k_in % p, chunk if kind == "F" else v - 1 - chunk)

    warmup = min(2 * (p - rank - 1) + (v - 1) * p, total)
    actions = [action("F", k) for k in range(warmup)]
    for k in range(total - warmup):
        actions += [action("F", warmup + k), action("B", k)]
    return actions + [action("B", k) for k in range(total - warmup, total)]


SCHEDULES = ("gpipe", "1f1b", "interleaved")


def schedule(name: str, p: int, m: int, rank: int, v: int = 1) -> list[Action]:
    """The action list of schedule `name` ("gpipe", "1f1b" or "interleaved") for `rank`."""
    guard("tplab.pp.schedules.schedule")
    if name == "gpipe":
        return gpipe(p, m, rank)
    if name == "1f1b":
        return one_f_one_b(p, m, rank)
    if name == "interleaved":
        return interleaved_1f1b(p, m, v, rank)
    raise ValueError(f"unknown schedule {name!r}: choose one of {', '.join(SCHEDULES)}")


def peak_inflight(actions: list[Action]) -> int:
    """The most (micro-batch, chunk) pairs whose forward is done and backward is not."""
    guard("tplab.pp.schedules.peak_inflight")
    live = peak = 0
    for a in actions:
        live += 1 if a.kind == "F" else -1
        peak = max(peak, live)
    return peak

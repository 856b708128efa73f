"""Checks of exercises 00 (solutions/00_devices_and_ranks.ipynb): who am I, a sum split across
ranks, random numbers that differ per rank and one that is shared.

The `run_*` functions run on every launched rank with the learner's function passed in and
return what it gave and what it communicated (`tplab.comm.trace()`); the `check_*` functions
raise an AssertionError that names the rank, the case, what came and what was expected, and
where the right value comes from.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from tplab import comm

__all__ = ["card_on_machines", "check_rank_cards", "traced_pairs", "S", "check_partial_and_total",
           "check_draws"]


# ---- exercise 00.1: rank_card ---------------------------------------------------------------

WHERE_FROM = {"rank": "dist.get_rank()",
              "world_size": "dist.get_world_size() (every rank on every machine)",
              "backend": "dist.get_backend()",
              "local_rank": "int(os.environ['LOCAL_RANK']): on a second machine it is not the "
                            "global rank"}


def card_on_machines(rank_card, ranks_per_machine: int):
    """On every rank: set the variables torchrun sets on a job of machines with
    `ranks_per_machine` ranks each, then call the learner's `rank_card`."""
    rank = dist.get_rank()
    os.environ.update(LOCAL_RANK=str(rank % ranks_per_machine),
                      GROUP_RANK=str(rank // ranks_per_machine),
                      LOCAL_WORLD_SIZE=str(ranks_per_machine))
    return rank_card()


def check_rank_cards(cards: list, n: int, per_machine: int) -> None:
    """Every rank's card has exactly the four keys, each the right value and type."""
    where = (f"{n} rank(s) on one machine" if per_machine == n else
             f"{n} ranks on {n // per_machine} machines of {per_machine} (simulated)")
    for r, card in enumerate(cards):
        expected = {"rank": r, "world_size": n, "backend": "gloo", "local_rank": r % per_machine}
        assert isinstance(card, dict) and set(card) == set(expected), (
            f"{where}, rank {r}: got {card!r}; expected a dict with exactly the keys "
            f"{sorted(expected)}")
        for key, want in expected.items():
            got = card[key]
            assert got == want and isinstance(got, type(want)) and not isinstance(got, bool), (
                f"{where}, rank {r}: '{key}' is {got!r} ({type(got).__name__}), expected {want!r} "
                f"({type(want).__name__}); use {WHERE_FROM[key]}")


# ---- exercises 00.2 and 00.3: a function every rank runs, with what it communicated ----------

def traced_pairs(fn, inputs):
    """On every rank: the learner's `fn` for each input (it returns a pair), with the
    communication each call made: [(first, second, trace summary)]."""
    out = []
    for x in inputs:
        with comm.trace() as t:
            first, second = fn(x)
        out.append((first, second, t.summary()))
    return out


# ---- exercise 00.2: partial_and_total --------------------------------------------------------

# the collectives that combine every rank's value into one (any one of them is a right answer)
COMBINING = {"all_reduce", "all_gather", "all_gather_into_tensor", "all_gather_object"}


def S(N: int) -> int:
    """The sum of squares 0² + 1² + ... + (N-1)², exactly."""
    return (N - 1) * N * (2 * N - 1) // 6


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _a_float(total: int) -> bool:
    """Whether `total` is a float32 or float64 value: what a sum in floating point returns
    (float32 keeps ~7 significant digits, float64 ~16), and an off-by-one sum seldom is."""
    return any(int(torch.tensor(float(total), dtype=d).item()) == total
               for d in (torch.float32, torch.float64))


def check_partial_and_total(n: int, got: list, Ns) -> None:
    """Each rank's partial is its cyclic share, exactly, as an int; the total is S(N), by exactly
    one combining collective when there are several ranks."""
    for r, per_N in enumerate(got):
        for N, (partial, total, calls) in zip(Ns, per_N):
            where = f"rank {r} of {n}, N={N}"
            want = sum(k * k for k in range(r, N, n))
            assert _is_int(partial) and partial == want, (
                f"{where}: partial is {partial!r}, expected {want} (an int: the sum of k*k over "
                f"the k with k % {n} == {r})")
            if n > 1:
                ncalls = sum(c["calls"] for c in calls.values())
                assert ncalls == 1 and set(calls) <= COMBINING, (
                    f"{where}: your communication was {calls or 'nothing'}, expected exactly one "
                    f"collective that combines every rank's partial (e.g. one dist.all_reduce)")
            close = (_is_int(total) and total != S(N) and abs(total - S(N)) <= 1e-5 * S(N)
                     and _a_float(total))
            hint = ("close, but not exact: the sum lost digits in floating point (a float32 "
                    "tensor keeps ~7 of them, float64 ~16); sum in an int64 tensor" if close else
                    "sum every rank's partial with the collective, and return a Python int "
                    "(.item())")
            assert _is_int(total) and total == S(N), (
                f"{where}: total is {total!r}, expected S({N}) = {S(N)}; {hint}")


# ---- exercise 00.3: draws --------------------------------------------------------------------

def check_draws(n: int, got: list, seeds) -> None:
    """'mine' is torch.rand(1) after seeding with seed + rank; 'shared' is rank 0's 'mine' on
    every rank, by exactly one broadcast from rank 0; both Python floats."""
    for i, seed in enumerate(seeds):
        rank0 = got[0][i][0]
        for r in range(n):
            mine, shared, calls = got[r][i]
            where = f"{n} ranks, seed={seed}, rank {r}"
            torch.manual_seed(seed + r)
            want = torch.rand(1).item()
            assert isinstance(mine, float) and isinstance(shared, float), (
                f"{where}: got ({mine!r}, {shared!r}), expected two Python floats (use .item())")
            overwritten = (" (rank 0's draw: seed with seed + rank, and broadcast a copy, not "
                           "mine itself)" if r and mine == rank0 else "")
            assert mine == want, (
                f"{where}: 'mine' is {mine}{overwritten}, expected {want}, torch.rand(1) right "
                f"after torch.manual_seed(seed + rank)")
            ops = set(calls)
            assert ops in ({"broadcast"}, {"broadcast_object_list"}) \
                and calls[ops.pop()]["calls"] == 1, (
                    f"{where}: your communication was {calls or 'nothing'}, expected exactly one "
                    f"dist.broadcast from rank 0")
            assert shared == rank0, (
                f"{where}: 'shared' is {shared}, expected rank 0's 'mine', {rank0}; broadcast (a "
                f"copy of) rank 0's draw with src=0")

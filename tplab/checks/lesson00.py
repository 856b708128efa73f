"""Checks of exercises 00 (solutions/00_devices_and_ranks.ipynb): who am I, a sum split across
ranks, random numbers that differ per rank and one that is shared.

The `run_*` functions run on every launched rank with the learner's function passed in and
return what it gave and what it communicated (`tplab.comm.trace()`); the `check_*` functions
raise an AssertionError that names the rank, the case, what came and what was expected, and
where the right value comes from.

A value that can be typed in, or computed without the communication, must not pass for one
taken from torch.distributed (an audit passed "backend": "gloo" typed in, a total from the closed
formula beside a discarded all-reduce, and a shared draw re-drawn from the seed beside a
discarded broadcast). So the check renames the backend for its run (`card_on_machines`), and
runs the sum and the draws a second time with what the collective delivers changed by a known
amount (`traced_pairs(..., perturb=...)`): only an answer that returns what came through the
collective follows the change.
"""
from __future__ import annotations

import os
import secrets

import torch
import torch.distributed as dist
from torch.distributed import distributed_c10d as _c10d

from tplab import comm
from tplab.comm import hooks

__all__ = ["card_on_machines", "check_rank_cards", "traced_pairs", "S", "check_partial_and_total",
           "check_draws"]


# ---- exercise 00.1: rank_card ---------------------------------------------------------------

WHERE_FROM = {"rank": "dist.get_rank()",
              "world_size": "dist.get_world_size() (every rank on every machine)",
              "backend": "dist.get_backend()",
              "local_rank": "int(os.environ['LOCAL_RANK']): on a second machine it is not the "
                            "global rank"}


def card_on_machines(rank_card, ranks_per_machine: int) -> dict:
    """On every rank: set the variables torchrun sets on a job of machines with
    `ranks_per_machine` ranks each, then call the learner's `rank_card` with the default group's
    backend renamed (in torch's own table, so dist.get_backend() by any name returns it) to a
    name drawn for this run: {"card": what rank_card returned, "backend": that name}. Every
    launch here is gloo, so "gloo" typed in would pass a check that expected "gloo"."""
    rank = dist.get_rank()
    os.environ.update(LOCAL_RANK=str(rank % ranks_per_machine),
                      GROUP_RANK=str(rank // ranks_per_machine),
                      LOCAL_WORLD_SIZE=str(ranks_per_machine))
    group, world = _c10d._get_default_group(), _c10d._world
    real, config = world.pg_map[group], world.pg_backend_config.get(group)
    name = f"{real[0]}-{secrets.token_hex(4)}"
    world.pg_map[group] = (name, *real[1:])
    if isinstance(config, str):                 # dist.get_backend_config(): "cpu:gloo"
        world.pg_backend_config[group] = config.replace(real[0], name)
    try:
        card = rank_card()
    finally:
        world.pg_map[group] = real
        if isinstance(config, str):
            world.pg_backend_config[group] = config
    return {"card": card, "backend": name}


def check_rank_cards(cards: list, n: int, per_machine: int) -> None:
    """Every rank's card (from `card_on_machines`) has exactly the four keys, each the right
    value and type; the backend is the name drawn for the run."""
    where = (f"{n} rank(s) on one machine" if per_machine == n else
             f"{n} ranks on {n // per_machine} machines of {per_machine} (simulated)")
    for r, got in enumerate(cards):
        card, backend = got["card"], got["backend"]
        expected = {"rank": r, "world_size": n, "backend": backend, "local_rank": r % per_machine}
        assert isinstance(card, dict) and set(card) == set(expected), (
            f"{where}, rank {r}: got {card!r}; expected a dict with exactly the keys "
            f"{sorted(expected)}")
        for key, want in expected.items():
            value = card[key]
            renamed = (" (for this check the backend was renamed, to a name drawn for the run, "
                       "so that a name typed in cannot pass)" if key == "backend" else "")
            assert value == want and isinstance(value, type(want)) \
                and not isinstance(value, bool), (
                    f"{where}, rank {r}: '{key}' is {value!r} ({type(value).__name__}), expected "
                    f"{want!r} ({type(want).__name__}){renamed}; use {WHERE_FROM[key]}")


# ---- exercises 00.2 and 00.3: a function every rank runs, with what it communicated ----------

def traced_pairs(fn, inputs, perturb: str | None = None):
    """On every rank: the learner's `fn` for each input (it returns a pair), with the
    communication each call made: [(first, second, trace summary)]. With `perturb` ("sum" or
    "broadcast") on several ranks, then each input again with what the collective delivers
    changed (`PERTURB`), appended as (first, second, trace summary, what was delivered)."""
    out = []
    for x in inputs:
        with comm.trace() as t:
            first, second = fn(x)
        out.append((first, second, t.summary()))
    if perturb is not None and dist.get_world_size() > 1:
        for x in inputs:
            delivered: list = []
            change = PERTURB[perturb]

            def note(kind, call, delivered=delivered, change=change):
                if kind == "end" and call.direct:
                    delivered.append(_changed(change, call))

            with comm.trace() as t, hooks.subscribe(note):
                first, second = fn(x)
            out.append((first, second, t.summary(), delivered))
    return out


def _bump(value, delta):
    """`value` + delta: a tensor changed in place at its first element (so a sum of it, or the
    element itself, moves by delta), a Python number returned changed; and the value now there."""
    if isinstance(value, torch.Tensor):
        at = (0,) * value.dim()
        value[at] += delta
        return value, value[at].item()
    return value + delta, value + delta


def _changed(change, call):
    """Apply `change` to what `call` delivered on this rank; what it delivered then, or None if
    nothing was changed (a call the check cannot follow, or the broadcast's own source)."""
    try:
        return change(call.op, call.arguments)
    except Exception:   # a call made in a form the check cannot follow: reported as not changed
        return None


DELTA = 7919      # added to an all-reduce's (or gather's) result in exercise 00.2's second run
BUMP = 0.5        # added to what a broadcast delivers in exercise 00.3's second run


def _change_sum(op, arguments):
    # the output that holds every rank's partial, by op -> the parameter holding it
    where = {"all_reduce": "tensor", "all_gather": "tensor_list",
             "all_gather_into_tensor": "output_tensor", "all_gather_single": "output_tensor",
             "all_gather_object": "object_list"}
    if op not in where or arguments is None:
        return None
    out = arguments[where[op]]
    if isinstance(out, list):
        out[0], _ = _bump(out[0], DELTA)
    else:
        _bump(out, DELTA)
    return DELTA


def _change_broadcast(op, arguments):
    if op not in ("broadcast", "broadcast_object_list") or arguments is None:
        return None
    src = arguments.get("src")
    src = arguments.get("group_src") or 0 if src is None else src
    if dist.get_rank() == src:
        return None
    if op == "broadcast":
        return _bump(arguments["tensor"], BUMP)[1]
    objects = arguments["object_list"]
    objects[0], now = _bump(objects[0], BUMP)
    return now


PERTURB = {"sum": _change_sum, "broadcast": _change_broadcast}


# ---- exercise 00.2: partial_and_total --------------------------------------------------------

# the collectives that combine every rank's value into one (any one of them is a right answer)
COMBINING = {"all_reduce", "all_gather", "all_gather_into_tensor", "all_gather_single",
             "all_gather_object"}


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
    one combining collective when there are several ranks; and on several ranks, in the second
    run (`traced_pairs(..., perturb="sum")`), S(N) + DELTA: what the collective delivered."""
    for r, per_N in enumerate(got):
        for N, (partial, total, calls) in zip(Ns, per_N[:len(Ns)]):
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
    if n > 1:
        _check_came_through(n, got, Ns)


def _check_came_through(n: int, got: list, Ns) -> None:
    """The second run: the check added DELTA to what the combining collective delivered, so a
    total taken from it is S(N) + DELTA; a total computed another way stays S(N)."""
    assert all(len(per_N) == 2 * len(Ns) for per_N in got), (
        "run this check cell as it is: it launches traced_pairs(..., \"sum\")")
    for r, per_N in enumerate(got):
        for N, (_, total, _, delivered) in zip(Ns, per_N[len(Ns):]):
            where = f"rank {r} of {n}, N={N}, second run"
            assert delivered and delivered[-1] is not None, (
                f"{where}: the check could not change your collective's result (it follows "
                f"dist.all_reduce, dist.all_gather, dist.all_gather_single and "
                f"dist.all_gather_object, called by name); call one of them")
            assert total == S(N) + DELTA, (
                f"{where}: the check added {DELTA} to what your collective delivered, so the "
                f"total should be S({N}) + {DELTA} = {S(N) + DELTA}, but it is {total!r}: return "
                f"the total your collective computed (its result), not one computed another way")


# ---- exercise 00.3: draws --------------------------------------------------------------------

def check_draws(n: int, got: list, seeds) -> None:
    """'mine' is torch.rand(1) after seeding with seed + rank; 'shared' is rank 0's 'mine' on
    every rank, by exactly one broadcast from rank 0; both Python floats. In the second run
    (`traced_pairs(..., perturb="broadcast")`) 'shared' on every other rank is what the
    broadcast delivered there, which the check changed by BUMP."""
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
    assert all(len(per_seed) == 2 * len(seeds) for per_seed in got), (
        "run this check cell as it is: it launches traced_pairs(..., \"broadcast\")")
    for r in range(1, n):
        for seed, (_, shared, _, delivered) in zip(seeds, got[r][len(seeds):]):
            where = f"{n} ranks, seed={seed}, rank {r}, second run"
            assert delivered and delivered[-1] is not None, (
                f"{where}: the check could not change what your broadcast delivered (it follows "
                f"dist.broadcast and dist.broadcast_object_list, called by name); call one of "
                f"them")
            assert shared == delivered[-1], (
                f"{where}: the check added {BUMP} to what your broadcast delivered on this rank, "
                f"so 'shared' should be {delivered[-1]}, but it is {shared}: return the value "
                f"the broadcast delivered, not one drawn again")

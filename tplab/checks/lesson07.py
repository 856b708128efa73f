"""Checks of exercise 07.1 (solutions/07_putting_it_together.ipynb): the groups of a
dp × pp × tp grid, every one of them, for any factorisation of the world.

Why these checks: a grid whose groups are wrong still runs (every collective has partners) and
still gives plausible numbers; it just averages gradients with the wrong replicas or splits a
layer over ranks on another server. So the learner's `grid_groups(world, dp, pp, tp)` is
compared, group for group, with what torch builds: `tplab.mesh.mesh_groups` reads each rank's
groups back from `init_device_mesh("cpu", (pp, dp, tp))` on 8 real gloo ranks (one launch, four
factorisations where the plausible orders differ), then with `tplab.mesh.Grid` on larger worlds
no launch can afford (12, 16, 24 and 32 ranks, uneven degrees, the interview's 16 = 2·2·4)
and on a few factorisations of 8..64 drawn when the check runs (so a table of the fixed cases
does not pass), and it must refuse degrees whose product is not the world with a ValueError:
also where floor division or a remainder would let them through (2·2·2 on 9 or 16 ranks, each
drawn grid on one rank more).
tplab.mesh's answers (Grid, new_groups, mesh_groups) are switched off while the learner's
function runs (also reloaded: `forbid.guard`). A wrong grid is named by the slip it equals (dp
fastest, pp fastest, ...) or by one wrong group and what is wrong with it, never by the whole
expected answer. The launch is on gloo (CPU tensors) whatever GPUs the machine has.
"""
from __future__ import annotations

import itertools
import os
import random

import torch.distributed as dist

from tplab.checks.forbid import forbidden
from tplab.mesh import Grid, mesh_groups, new_groups
from tplab.ranks.launcher import launch

__all__ = ["MESH_CASES", "PURE_CASES", "BAD_CASES", "reference_groups", "mesh_reference",
           "drawn_cases", "check_grid_groups"]

DIMS = ("dp", "pp", "tp")
# on 8 real ranks (dp, pp, tp): every pair of dimensions > 1 at least once, so orders differ
MESH_CASES = [(2, 2, 2), (2, 1, 4), (4, 2, 1), (1, 4, 2)]
# larger worlds, pure arithmetic (world, dp, pp, tp): uneven degrees, 3 as a degree
PURE_CASES = [(24, 2, 3, 4), (12, 3, 2, 2), (16, 4, 2, 2), (32, 2, 4, 4), (6, 1, 2, 3),
              (1, 1, 1, 1), (16, 2, 2, 4)]
# degrees whose product is not the world: 8 on 12 ranks, 4 on 8; 8 on 9 and 6 on 7, which a test
# by floor division (tp != world // (dp·pp)) lets through; 8 on 16, which world % product lets
BAD_CASES = [(12, 2, 2, 2), (8, 2, 2, 1), (9, 2, 2, 2), (7, 1, 2, 3), (16, 2, 2, 2)]

_NOT_YOURS = ("grid_groups called tplab.mesh.{}, which computes the answer the check compares "
              "with: work out the rank lists yourself")


def reference_groups(dp: int, pp: int, tp: int) -> dict[str, list[list[int]]]:
    """Every group of each dimension, as tplab.mesh.Grid lists them."""
    grid = Grid(dp, pp, tp)
    return {dim: grid.groups(dim) for dim in DIMS}


def _on_rank(cases):
    """This rank's groups from DeviceMesh, for each (dp, pp, tp)."""
    found = [mesh_groups(Grid.of(dist.get_world_size(), *case)) for case in cases]
    dist.barrier()
    return found


def mesh_reference(cases=MESH_CASES, world: int = 8) -> dict[tuple, dict[str, list[list[int]]]]:
    """{(dp, pp, tp): {dim: every group}} assembled from each rank's DeviceMesh groups."""
    per_rank = launch(_on_rank, world, cases, backend="gloo", timeout=60)
    out = {}
    for k, case in enumerate(cases):
        out[case] = {dim: sorted({tuple(r[k][dim]) for r in per_rank}) for dim in DIMS}
        out[case] = {dim: [list(g) for g in groups] for dim, groups in out[case].items()}
    return out


def drawn_cases(n: int = 3, seed=None) -> list[tuple]:
    """n grids (world, dp, pp, tp) of 8..64 ranks with every degree > 1, drawn from `seed`
    (by default one nobody sees)."""
    rng = random.Random(os.urandom(8) if seed is None else seed)
    grids = [(dp * pp * tp, dp, pp, tp) for dp in range(2, 9) for pp in range(2, 9)
             for tp in range(2, 9) if 8 <= dp * pp * tp <= 64]
    return rng.sample(grids, n)


def _normalise(got, where):
    assert isinstance(got, dict) and set(got) == set(DIMS), (
        f"{where} returned {got!r:.120}; return a dict with exactly the keys 'dp', 'pp', 'tp'")
    out = {}
    for dim in DIMS:
        groups = got[dim]
        ok = (isinstance(groups, (list, tuple))
              and all(isinstance(g, (list, tuple)) and all(isinstance(r, int) for r in g)
                      for g in groups))
        assert ok, f"{where}[{dim!r}] is {groups!r:.120}; give a list of lists of ranks (ints)"
        out[dim] = sorted(sorted(g) for g in groups)
    return out


def _alternatives(dp, pp, tp) -> list[tuple[str, dict]]:
    """Grids laid out in the other orders: the slips a wrong answer may equal."""
    sizes = {"dp": dp, "pp": pp, "tp": tp}
    found = []
    for order in itertools.permutations(DIMS):   # slowest to fastest
        if order == ("pp", "dp", "tp"):
            continue
        groups = {dim: [] for dim in DIMS}
        for dim in DIMS:
            others = [d for d in order if d != dim]
            for a in range(sizes[others[0]]):
                for b in range(sizes[others[1]]):
                    idx = {others[0]: a, others[1]: b}
                    group = []
                    for i in range(sizes[dim]):
                        idx[dim] = i
                        rank = 0
                        for d in order:
                            rank = rank * sizes[d] + idx[d]
                        group.append(rank)
                    groups[dim].append(sorted(group))
            groups[dim].sort()
        found.append((f"{order[2]} varying fastest, then {order[1]}, then {order[0]}", groups))
    return found


_PLURAL = {"pp": "stages", "dp": "replicas", "tp": "tp shards"}


def _coords(rank: int, dp: int, tp: int) -> dict[str, int]:
    return {"pp": rank // (dp * tp), "dp": rank // tp % dp, "tp": rank % tp}


def _wrong_group(got_groups, dim, dp, pp, tp) -> str:
    """One rank's wrong group of `dim`, and what is wrong with it (not the expected list)."""
    world, size = dp * pp * tp, {"dp": dp, "pp": pp, "tp": tp}[dim]
    for rank in range(world):
        holding = [g for g in got_groups if rank in g]
        if len(holding) != 1:
            return (f"rank {rank} is in {len(holding)} {dim} groups: every rank is in exactly "
                    f"one group of each dimension")
        group = holding[0]
        if any(not 0 <= r < world for r in group):
            return f"rank {rank}'s {dim} group {group} holds ranks outside 0..{world - 1}"
        me = _coords(rank, dp, tp)
        mixed = [d for d in DIMS if d != dim
                 and any(_coords(r, dp, tp)[d] != me[d] for r in group)]
        if mixed:
            return (f"rank {rank}'s {dim} group {group} mixes ranks of different "
                    f"{' and '.join(_PLURAL[d] for d in mixed)}: its members must differ only "
                    f"in {dim} (rank = (p·dp + d)·tp + t)")
        if len(group) != size:
            return (f"rank {rank}'s {dim} group {group} has {len(group)} ranks; a {dim} group "
                    f"holds all {size} ranks that differ from it only in {dim}")
    return f"the {dim} groups are not every group of the grid"


def _problem(got, want, dp, pp, tp, where) -> str | None:
    if got == want:
        return None
    same_as = next((name for name, alt in _alternatives(dp, pp, tp) if alt == got), None)
    wrong = [dim for dim in DIMS if got[dim] != want[dim]]
    hint = (f": that is the layout with {same_as}; the grid's order is tp fastest, then dp, "
            f"then pp" if same_as else "")
    return (f"{where}: the {', '.join(wrong)} groups are wrong{hint}.\n  "
            + _wrong_group(got[wrong[0]], wrong[0], dp, pp, tp))


def check_grid_groups(fn, namespace, mesh: dict | None = None) -> dict:
    """`fn(world, dp, pp, tp)` equals DeviceMesh's groups on 8 ranks for MESH_CASES (`mesh`:
    already gathered, else one launch), Grid's for PURE_CASES, and raises ValueError for
    BAD_CASES and each drawn grid on one rank more; a few grids drawn now are checked like
    PURE_CASES. Returns {(dp, pp, tp): the learner's groups} for MESH_CASES."""
    answers = {f: _NOT_YOURS.format(f.__name__) for f in (Grid, mesh_groups, new_groups)}
    pure_cases = PURE_CASES + drawn_cases()
    # each drawn grid on one rank more: floor division would still find its tp
    bad_cases = BAD_CASES + [(world + 1, dp, pp, tp) for world, dp, pp, tp in pure_cases[-3:]]
    with forbidden(namespace, answers):
        mine = {case: fn(8, *case) for case in MESH_CASES}
        pure = {case: fn(*case) for case in pure_cases}
        refused = {}
        for case in bad_cases:
            try:
                fn(*case)
                refused[case] = None
            except ValueError as error:
                refused[case] = str(error)
    mesh = mesh or mesh_reference()
    for case in MESH_CASES:
        where = f"grid_groups(8, dp={case[0]}, pp={case[1]}, tp={case[2]})"
        problem = _problem(_normalise(mine[case], where), mesh[case], *case, where)
        assert problem is None, problem + "\n  (expected: init_device_mesh's groups on 8 ranks)"
    for case in pure_cases:
        world, dp, pp, tp = case
        where = f"grid_groups({world}, dp={dp}, pp={pp}, tp={tp})"
        problem = _problem(_normalise(pure[case], where), reference_groups(dp, pp, tp),
                           dp, pp, tp, where)
        assert problem is None, problem
    for (world, dp, pp, tp), message in refused.items():
        assert message is not None, (
            f"grid_groups({world}, dp={dp}, pp={pp}, tp={tp}) returned groups, but "
            f"{dp}·{pp}·{tp} = {dp * pp * tp} ranks is not a world of {world}: raise a "
            f"ValueError that says so")
    return {case: _normalise(mine[case], "") for case in MESH_CASES}

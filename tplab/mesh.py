"""The (dp, pp, tp) grid of a world: which rank sits where, and which ranks talk in each group.

Why a grid: 3D parallelism runs data, pipeline and tensor parallelism at once, and every rank
belongs to exactly one group of each kind. Its tp group holds the ranks that split its layers
(an all-reduce per layer: the chattiest, so they should be the closest: neighbouring ranks,
one machine's GPUs over NVLink); its pp group the ranks holding the other stages of its
replica (point-to-point sends per micro-batch); its dp group the ranks holding the same
shard of the model in the other replicas (one gradient all-reduce per step).

Rank order is Megatron-LM's and that of
`init_device_mesh(device, (pp, dp, tp), mesh_dim_names=("pp", "dp", "tp"))`: tp varies
fastest, then dp, then pp, so

    rank = (pp_index · dp + dp_index) · tp + tp_index.

`Grid` is pure arithmetic (no torch.distributed), so a lesson can draw it and a test can check
it without ranks. `new_groups` builds this rank's three groups by hand; `mesh_groups` reads the
same rank lists back from torch's `DeviceMesh` (it works on gloo CPU ranks) to show both agree.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch.distributed as dist

from tplab.checks.forbid import guard  # exercise 07.1's check hides these, even reloaded

__all__ = ["DIMS", "Coords", "Grid", "new_groups", "mesh_groups"]

DIMS = ("pp", "dp", "tp")  # slowest to fastest, as in the rank formula and the DeviceMesh shape


class Coords(NamedTuple):
    """Where a rank sits: its pipeline stage, its data-parallel replica, its tensor shard."""
    pp: int
    dp: int
    tp: int


@dataclasses.dataclass(frozen=True)
class Grid:
    """dp × pp × tp ranks; every degree ≥ 1."""
    dp: int
    pp: int
    tp: int

    def __post_init__(self):
        guard("tplab.mesh.Grid")
        for dim in DIMS:
            degree = getattr(self, dim)
            if not isinstance(degree, int) or degree < 1:
                raise ValueError(f"{dim} degree must be a whole number >= 1, got {degree!r}")

    @classmethod
    def of(cls, world: int, dp: int, pp: int, tp: int) -> Grid:
        """The grid, checked against a world size: dp·pp·tp must be exactly the world."""
        grid = cls(dp, pp, tp)
        if grid.world != world:
            raise ValueError(f"dp·pp·tp = {dp}·{pp}·{tp} = {grid.world} ranks, but the world has "
                             f"{world}: choose degrees whose product is {world}")
        return grid

    @property
    def world(self) -> int:
        return self.dp * self.pp * self.tp

    @property
    def shape(self) -> tuple[int, int, int]:
        """(pp, dp, tp): the DeviceMesh shape, slowest dimension first."""
        return self.pp, self.dp, self.tp

    def coords(self, rank: int) -> Coords:
        """(pp, dp, tp) of a global rank."""
        if not 0 <= rank < self.world:
            raise ValueError(f"rank {rank} is not in a grid of {self.world} ranks "
                             f"(0..{self.world - 1})")
        rest, tp = divmod(rank, self.tp)
        pp, dp = divmod(rest, self.dp)
        return Coords(pp, dp, tp)

    def rank(self, pp: int, dp: int, tp: int) -> int:
        """The global rank at (pp, dp, tp)."""
        for dim, index in zip(DIMS, (pp, dp, tp)):
            if not 0 <= index < getattr(self, dim):
                raise ValueError(f"{dim} index {index} is outside 0..{getattr(self, dim) - 1}")
        return (pp * self.dp + dp) * self.tp + tp

    def groups(self, dim: str) -> list[list[int]]:
        """Every group along `dim` ("dp", "pp" or "tp"): lists of ranks that differ only there,
        each in increasing order, ordered by the first rank (as DeviceMesh enumerates them)."""
        if dim not in DIMS:
            raise ValueError(f"unknown grid dimension {dim!r}: choose one of {', '.join(DIMS)}")
        others = [d for d in DIMS if d != dim]
        found = []
        for a in range(getattr(self, others[0])):
            for b in range(getattr(self, others[1])):
                fixed = {others[0]: a, others[1]: b}
                found.append([self.rank(**fixed, **{dim: i}) for i in range(getattr(self, dim))])
        return sorted(found)

    def group_of(self, rank: int, dim: str) -> list[int]:
        """The ranks of `rank`'s group along `dim`."""
        return next(g for g in self.groups(dim) if rank in g)


def new_groups(grid: Grid) -> dict:
    """This rank's {"dp": group, "pp": group, "tp": group}, built with `dist.new_group`.

    Every rank creates EVERY group of every dimension, in the same order, and keeps its own.
    Why: `new_group` is a collective over the whole world (each call agrees on a new group
    id through the store), so a rank that skipped a group it is not in, or created them in
    another order, would pair its call with a different group on its peers: the ids no longer
    match and the ranks hang, or worse, talk on the wrong group.
    """
    guard("tplab.mesh.new_groups")
    _check_world(grid)
    me, mine = dist.get_rank(), {}
    for dim in ("dp", "pp", "tp"):
        for ranks in grid.groups(dim):
            group = dist.new_group(ranks)
            if me in ranks:
                mine[dim] = group
    return mine


def mesh_groups(grid: Grid) -> dict[str, list[int]]:
    """This rank's group of each dimension, as rank lists read back from torch's DeviceMesh:
    `init_device_mesh("cpu", (pp, dp, tp), mesh_dim_names=("pp", "dp", "tp"))`, then each
    dimension's process group and its ranks. On gloo CPU ranks (torch 2.13) it needs nothing
    more than the default process group `tplab.launch` starts."""
    from torch.distributed.device_mesh import init_device_mesh

    guard("tplab.mesh.mesh_groups")
    _check_world(grid)
    mesh = init_device_mesh("cpu", grid.shape, mesh_dim_names=DIMS)
    return {dim: sorted(dist.get_process_group_ranks(mesh.get_group(dim)))
            for dim in ("dp", "pp", "tp")}


def _check_world(grid: Grid) -> None:
    world = dist.get_world_size()
    if grid.world != world:
        raise ValueError(f"a {grid.dp}x{grid.pp}x{grid.tp} (dp x pp x tp) grid needs "
                         f"{grid.world} ranks, but this world has {world}: launch {grid.world} "
                         f"ranks or choose degrees whose product is {world}")

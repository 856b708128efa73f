"""tplab.mesh: the grid's arithmetic, and its groups built by hand equal torch's DeviceMesh."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch.distributed as dist  # noqa: E402

import tplab  # noqa: E402
from tplab.mesh import Grid, mesh_groups, new_groups  # noqa: E402
from tplab.viz.mesh import plot_grid  # noqa: E402

FOUR_RANK_GRIDS = [Grid(2, 2, 1), Grid(1, 2, 2), Grid(2, 1, 2)]


def test_megatron_order_tp_fastest_then_dp_then_pp():
    grid = Grid(dp=2, pp=2, tp=2)
    assert [tuple(grid.coords(r)) for r in range(8)] == [
        (0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)]
    assert grid.groups("tp") == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert grid.groups("dp") == [[0, 2], [1, 3], [4, 6], [5, 7]]
    assert grid.groups("pp") == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert grid.coords(6).pp == 1 and grid.coords(6).dp == 1 and grid.coords(6).tp == 0
    assert grid.shape == (2, 2, 2) and Grid(dp=3, pp=2, tp=4).shape == (2, 3, 4)


@pytest.mark.parametrize("dims", [(3, 2, 4), (1, 4, 1), (2, 3, 1), (1, 1, 1)])
def test_coords_and_rank_invert_and_each_dim_partitions_the_world(dims):
    grid = Grid(*dims)
    for rank in range(grid.world):
        assert grid.rank(**grid.coords(rank)._asdict()) == rank
    for dim in ("dp", "pp", "tp"):
        groups = grid.groups(dim)
        assert sorted(r for g in groups for r in g) == list(range(grid.world))
        assert all(len(g) == getattr(grid, dim) for g in groups)
        for g in groups:  # members differ only along dim
            others = {tuple(c for d, c in grid.coords(r)._asdict().items() if d != dim) for r in g}
            assert len(others) == 1


def test_bad_degrees_say_what_to_do():
    with pytest.raises(ValueError, match="product is 8"):
        Grid.of(8, dp=2, pp=2, tp=3)
    with pytest.raises(ValueError, match=">= 1"):
        Grid(0, 2, 2)
    with pytest.raises(ValueError, match="not in a grid of 8"):
        Grid(2, 2, 2).coords(8)
    with pytest.raises(ValueError, match="choose one of"):
        Grid(2, 2, 2).groups("ep")


def _both_ways(grids):
    """By hand (new_groups) and from DeviceMesh, for each grid; then a mismatched grid."""
    found = []
    for grid in grids:
        by_hand = {d: sorted(dist.get_process_group_ranks(g)) for d, g in new_groups(grid).items()}
        found.append((by_hand, mesh_groups(grid)))
    try:
        new_groups(Grid(2, 2, 2) if dist.get_world_size() == 4 else Grid(1, 1, 4))
    except ValueError as error:
        found.append(str(error))
    return found


def _check(grids, results):
    for rank, found in enumerate(results):
        for grid, (by_hand, from_mesh) in zip(grids, found):
            expected = {d: grid.group_of(rank, d) for d in ("dp", "pp", "tp")}
            assert by_hand == from_mesh == expected, (grid, rank)
        assert "launch" in found[-1] and "ranks" in found[-1]


def test_groups_by_hand_equal_device_mesh_on_8_ranks():
    _check([Grid(2, 2, 2)], tplab.launch(_both_ways, 8, [Grid(2, 2, 2)], timeout=60))


def test_groups_by_hand_equal_device_mesh_on_4_ranks():
    _check(FOUR_RANK_GRIDS, tplab.launch(_both_ways, 4, FOUR_RANK_GRIDS, timeout=60))


def test_plot_grid_draws_every_rank_and_names_the_groups():
    fig = plot_grid(Grid(2, 2, 2), highlight="dp")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert [t for t in texts if t.startswith("rank ")] == [f"rank {r}" for r in range(8)]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == [f"dp group {g}" for g in Grid(2, 2, 2).groups("dp")]
    assert plot_grid(Grid(1, 3, 2)).axes[0].get_legend() is None
    with pytest.raises(ValueError, match="highlight"):
        plot_grid(Grid(2, 2, 2), highlight="ep")
    plt.close("all")

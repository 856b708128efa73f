"""The 3D run: DP×PP×TP training equals one process, and each group's traffic is the formula."""
from __future__ import annotations

import pytest
import torch

import tplab
from tplab.grid3d import (
    TINY,
    dense_model,
    expected_traffic,
    shard_numel,
    train_3d,
    train_reference,
)
from tplab.mesh import Grid

STEPS = 3
# (dp, pp, tp, micro_batches, schedule, batch): every 2x2 layout, a GPipe run with 4 micro-batches
FOUR_RANK_RUNS = [(2, 2, 1, 2, "1f1b", 4), (1, 2, 2, 2, "1f1b", 4), (2, 1, 2, 2, "1f1b", 4),
                  (1, 2, 2, 4, "gpipe", 8)]


@pytest.fixture(scope="module")
def references():
    return {batch: train_reference(STEPS, batch=batch) for batch in (4, 8)}


def _runs(runs):
    return [train_3d(dp, pp, tp, STEPS, m, schedule_name=name, batch=batch)
            for dp, pp, tp, m, name, batch in runs]


def _check(runs, results, references):
    for (dp, pp, tp, m, _, batch), k in zip(runs, range(len(runs))):
        grid, reference = Grid(dp, pp, tp), references[batch]
        for rank, result in enumerate(r[k] for r in results):
            where = grid.coords(rank)
            assert result["coords"] == tuple(where)
            if where.pp == pp - 1:
                assert result["losses"] == pytest.approx(reference["losses"], abs=1e-5)
            else:
                assert result["losses"] is None
            params = result["params"]
            assert params.keys() == reference["params"].keys()
            for name, value in reference["params"].items():
                torch.testing.assert_close(params[name], value, atol=1e-5, rtol=0, msg=name)
            expected = expected_traffic(grid, rank, steps=STEPS, micro_batches=m,
                                        micro_batch_size=batch // (dp * m), seq=8)
            assert result["traffic"] == expected, (grid, rank)
            # the per-group split loses nothing tplab.comm.trace() saw
            for op, seen in result["total"].items():
                assert seen["bytes"] == sum(t.get(op, {}).get("bytes", 0)
                                            for t in result["traffic"].values())


def test_reference_trains_and_moves_every_parameter(references):
    losses = references[4]["losses"]
    assert losses[0] > losses[1] > losses[2]
    start = dict(dense_model().named_parameters())
    for name, value in references[4]["params"].items():
        assert (value - start[name]).abs().max() > 1e-4, name


def test_dp2_pp2_tp2_on_8_ranks_equals_one_process(references):
    runs = [(2, 2, 2, 2, "1f1b", 4)]
    _check(runs, tplab.launch(_runs, 8, runs, timeout=60), references)


def _runs_and_errors(runs):
    found = _runs(runs)
    for call in (lambda: train_3d(2, 2, 2), lambda: train_3d(2, 2, 1, batch=6),
                 lambda: train_3d(1, 1, 4)):
        try:
            call()
        except ValueError as error:
            found.append(str(error))
    return found


def test_2x2_layouts_on_4_ranks_equal_one_process(references):
    results = tplab.launch(_runs_and_errors, 4, FOUR_RANK_RUNS, timeout=60)
    _check(FOUR_RANK_RUNS, results, references)
    errors = results[0][len(FOUR_RANK_RUNS):]
    assert len(errors) == 3
    assert "product is 4" in errors[0]
    assert "multiple of 4" in errors[1]
    assert "divisors of 2" in errors[2]


def test_dp_bytes_are_the_ranks_own_parameters():
    config = TINY
    whole = sum(p.numel() for p in dense_model(config).parameters())
    pieces = sum(shard_numel(config, 2, 2, stage, tp_rank)
                 for stage in (0, 1) for tp_rank in (0, 1))
    replicated = 2 * config.n_layers * config.hidden + 2 * config.vocab_size * config.hidden \
        + config.hidden  # norms, embedding and head are whole on both tp ranks
    assert pieces == whole + replicated
    assert shard_numel(config, 1, 1, 0, 0) == whole
    assert expected_traffic(Grid(2, 2, 2), 0, config, steps=1, micro_batches=2,
                            micro_batch_size=1, seq=8)["dp"]["all_reduce"]["bytes"] \
        == 4 * shard_numel(config, 2, 2, 0, 0)

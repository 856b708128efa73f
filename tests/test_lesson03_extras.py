"""Lesson 03's extras: activation bytes measured vs derived, the published formula, Megatron-style
RNG states, the link arithmetic, the step clock, and exercise 03.3's checks."""
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

import tplab
from tplab import comm
from tplab.checks.lesson03_order import (
    check_row_first_numbers,
    check_row_first_traffic,
    run_row_first,
)
from tplab.layers import Attention, SwiGLU
from tplab.layers.block import Block
from tplab.tp import ParallelAttention, ParallelSwiGLU, shard_sizes
from tplab.tp.activations import block_terms, fit_replicated_sharded, korthikanti, saved_bytes
from tplab.tp.links import LINKS, LLAMA2_70B, layer_times
from tplab.tp.rng import OFFSET, RNGStatesTracker, model_parallel_manual_seed
from tplab.tp.timeline import StepClock, blocked_share, in_flight_share

DIM, HEADS, HDIM, INNER, B, S = 24, 6, 4, 36, 2, 8


def _block_bytes(heads_kv):
    torch.manual_seed(0)
    block = Block(ParallelAttention.from_dense(Attention(DIM, HEADS, heads_kv, head_dim=HDIM)),
                  ParallelSwiGLU.from_dense(SwiGLU(DIM, INNER)), DIM)
    nbytes, out = saved_bytes(block, torch.randn(B, S, DIM, requires_grad=True))
    out.sum().backward()  # what was saved is what backward reads: it runs
    return nbytes


@pytest.mark.parametrize("heads_kv", [6, 3])
def test_saved_bytes_are_the_derived_terms_on_1_2_3_ranks(heads_kv):
    terms = block_terms(B, S, DIM, HEADS, HDIM, INNER)
    for t in (1, 2, 3):
        if heads_kv % t and t <= heads_kv:
            continue  # uneven KV groups: the ranks' shares differ, tested below
        for nbytes in tplab.launch(_block_bytes, t, heads_kv):
            assert nbytes == terms["replicated"] + terms["sharded"] / t


def test_saved_bytes_leave_parameters_out_and_count_a_storage_once():
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(3, 4, requires_grad=True)
    nbytes, _ = saved_bytes(lin, x)
    assert nbytes == x.numel() * 4  # the input, once; the weight is not an activation


def test_fit_recovers_replicated_and_sharded():
    r, s = fit_replicated_sharded([1, 2, 4], [10 + 24 / t for t in (1, 2, 4)])
    assert r == pytest.approx(10) and s == pytest.approx(24)


def test_korthikanti_formula():
    s, b, h, a = 2048, 1, 12288, 96
    one = korthikanti(s, b, h, a, t=1)
    assert one["replicated"] + one["sharded"] == s * b * h * (34 + 5 * a * s / h)
    eight = korthikanti(s, b, h, a, t=8)
    assert eight["replicated"] == 10 * s * b * h
    assert eight["sharded"] == pytest.approx(s * b * h * (24 / 8 + 5 * a * s / (h * 8)))
    sp = korthikanti(s, b, h, a, t=8, sequence_parallel=True)
    assert sp["replicated"] == 0 and sp["sharded"] == pytest.approx(
        (one["replicated"] + one["sharded"]) / 8)


def test_rng_tracker_forks_and_restores():
    tracker = RNGStatesTracker()
    torch.manual_seed(5)
    tracker.add("tp", 99)
    with tracker.fork("tp"):
        first = torch.rand(3)
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3))  # the default stream did not move
    with tracker.fork("tp"):
        second = torch.rand(3)
    torch.manual_seed(99)
    assert torch.equal(torch.cat([first, second]), torch.rand(6))  # the tracked one continued
    with pytest.raises(ValueError):
        tracker.add("tp", 1)
    with pytest.raises(KeyError), tracker.fork("nope"):
        pass


def test_model_parallel_seed_same_default_different_split():
    draws = []
    for rank in (0, 1):
        tracker = model_parallel_manual_seed(7, rank)
        with tracker.fork():
            split = torch.rand(4)
        draws.append((torch.rand(4), split))
    assert torch.equal(draws[0][0], draws[1][0])
    assert not torch.equal(draws[0][1], draws[1][1])
    torch.manual_seed(7 + OFFSET + 1)
    assert torch.equal(draws[1][1], torch.rand(4))


def test_llama2_70b_shape_and_link_times():
    n = 80 * LLAMA2_70B.layer_params() + 2 * 32000 * 8192 + (2 * 80 + 1) * 8192
    assert n == pytest.approx(68.98e9, rel=1e-3)  # gpt-fast's count
    r = layer_times(LLAMA2_70B, s=4096, b=1, t=8)
    assert r["payload"] == 4096 * 8192 * 2
    assert r["sent"] == 4 * 2 * 7 / 8 * r["payload"]
    assert set(r["link_s"]) == {link.name for link in LINKS}
    fast, *slow = sorted(r["link_s"].values())
    assert fast < r["compute_s"] < min(slow)


def _clocked():
    with StepClock() as clock:
        x = torch.ones(1000)
        clock.mark("backward")
        dist.all_reduce(x)
        comm.all_reduce(x)
    return clock.summary()


def test_step_clock_records_collectives_and_marks():
    for summary in tplab.launch(_clocked, 2):
        ops = [op for op, *_ in summary["calls"]]
        assert ops == ["all_reduce", "all_reduce"]
        assert all(0 <= a <= b <= summary["marks"]["end"] for _, _, a, b in summary["calls"])
        assert 0 < blocked_share(summary) <= 1


def test_in_flight_share():
    events = [("launch", 0, 0.0), ("complete", 0, 10.0), ("launch", 1, 5.0),
              ("complete", 1, 15.0)]
    assert in_flight_share(events, until=10.0) == pytest.approx(15 / 20)


def _row_first(x_cols, a_rows, b_cols, hidden):
    partial = x_cols @ a_rows
    dist.all_reduce(partial)
    return comm.all_gather(F.gelu(partial) @ b_cols, shard_sizes(hidden, dist.get_world_size()),
                           dim=-1)


def _phi_first(x_cols, a_rows, b_cols, hidden):
    partial = F.gelu(x_cols @ a_rows)
    dist.all_reduce(partial)
    return comm.all_gather(partial @ b_cols, shard_sizes(hidden, dist.get_world_size()), dim=-1)


def test_row_first_checks_pass_the_answer_and_name_phi_first():
    for rank, out in enumerate(tplab.launch(run_row_first, 3, _row_first)):
        check_row_first_numbers(3, rank, out)
        check_row_first_traffic(3, rank, out)
        assert out["column_first_ok"]
    out = tplab.launch(run_row_first, 2, _phi_first)[0]
    with pytest.raises(AssertionError, match="φ applied"):
        check_row_first_numbers(2, 0, out)

"""Lesson 03's extras: activation bytes measured vs derived, the published formula, Megatron-style
RNG states, the link arithmetic, the step clock, and exercise 03.3's checks."""
import time

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
from tplab.tp.activations import (
    SavedBytes,
    block_terms,
    fit_replicated_sharded,
    korthikanti,
    saved_bytes,
)
from tplab.tp.links import LINKS, LLAMA2_70B, layer_times
from tplab.tp.plan import attention_shards, mlp_shards
from tplab.tp.rng import OFFSET, RNGStatesTracker, model_parallel_manual_seed
from tplab.tp.timeline import StepClock, blocked_share, bucket_spans, in_flight_share, sent_bytes

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
        for rank, nbytes in enumerate(tplab.launch(_block_bytes, t, heads_kv)):
            # this rank's share of the sharded terms: its query heads (k and v are expanded to
            # one per query head) and its FFN features; uneven where 3 KV groups meet 2 ranks
            q0, q1 = attention_shards(HEADS, heads_kv, HDIM, t)[rank].q_heads
            f0, f1 = mlp_shards(INNER, t)[rank].features
            assert nbytes == (terms["replicated"] + terms["attention"] * (q1 - q0) // HEADS
                              + terms["mlp"] * (f1 - f0) // INNER), (t, rank, heads_kv)


def test_saved_bytes_leave_parameters_out_and_count_a_storage_once():
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(3, 4, requires_grad=True)
    nbytes, _ = saved_bytes(lin, x)
    assert nbytes == x.numel() * 4  # the input, once; the weight is not an activation


def test_saved_bytes_count_what_views_reach():
    w = torch.randn(4, 4, requires_grad=True)
    batch = torch.randn(6, 4)
    with SavedBytes(exclude=[w]) as first_rows:
        batch[:2] @ w                          # a micro-batch that is a view: its own 2 rows
    assert first_rows.nbytes == 2 * 4 * 4
    with SavedBytes(exclude=[w]) as both:
        batch[:2] @ w
        batch[1:3] @ w                         # overlapping rows count once: rows 0..2
    assert both.nbytes == 3 * 4 * 4
    with SavedBytes(exclude=[w]) as expanded:
        batch[:1].expand(5, 4) @ w             # 5 rows that all read the same one
    assert expanded.nbytes == 1 * 4 * 4


def test_fit_recovers_replicated_and_sharded():
    r, s = fit_replicated_sharded([1, 2, 4], [10 + 24 / t for t in (1, 2, 4)])
    assert r == pytest.approx(10) and s == pytest.approx(24)


def _korthikanti_items(s, b, h, a):
    """The paper's itemised bytes per layer (arXiv:2205.05198, section 4.1), 16-bit numbers and
    1-byte dropout masks, each marked with the region it lives in under tensor parallelism."""
    sbh, as2b = s * b * h, a * s * s * b
    return [  # (what, bytes, replicated?)
        ("attention: QKV's input", 2 * sbh, True), ("attention: Q and K", 4 * sbh, False),
        ("attention: softmax output", 2 * as2b, False), ("attention: softmax mask", as2b, False),
        ("attention: softmax dropout output", 2 * as2b, False), ("attention: V", 2 * sbh, False),
        ("attention: output projection's input", 2 * sbh, False),
        ("attention: dropout mask", sbh, True),
        ("MLP: first linear's input", 2 * sbh, True), ("MLP: GeLU's input", 8 * sbh, False),
        ("MLP: second linear's input", 8 * sbh, False), ("MLP: dropout mask", sbh, True),
        ("two layer norms' inputs", 4 * sbh, True)]


@pytest.mark.parametrize("t", [1, 2, 8])
def test_korthikanti_formula_is_the_papers_items_summed(t):
    s, b, h, a = 2048, 1, 12288, 96
    items = _korthikanti_items(s, b, h, a)
    assert sum(n for _, n, _ in items) == s * b * h * 34 + 5 * a * s * s * b  # 34sbh + 5as²b
    got = korthikanti(s, b, h, a, t=t)
    assert got["replicated"] == sum(n for _, n, rep in items if rep)
    assert got["sharded"] == pytest.approx(sum(n for _, n, rep in items if not rep) / t)
    sp = korthikanti(s, b, h, a, t=t, sequence_parallel=True)
    assert sp["replicated"] == 0
    assert sp["sharded"] == pytest.approx(sum(n for _, n, _ in items) / t)


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


NAP = 0.05  # s of work outside any collective


def _clocked():
    with StepClock() as clock:
        x = torch.ones(1000)
        time.sleep(NAP)
        clock.mark("backward")
        dist.all_reduce(x)
        comm.all_reduce(x)
        time.sleep(NAP)
    return clock.summary()


def test_step_clock_records_collectives_and_marks():
    for summary in tplab.launch(_clocked, 2):
        calls, marks = summary["calls"], summary["marks"]
        assert [op for op, *_ in calls] == ["all_reduce", "all_reduce"]
        assert sent_bytes(summary) == 2 * 1000 * 4
        assert NAP * 1e3 <= marks["backward"] <= calls[0][2]      # the mark, then the calls
        assert calls[0][3] <= calls[1][2] and calls[1][3] <= marks["end"] - NAP * 1e3
        share = blocked_share(summary)
        assert 0 < share < 1 - 2 * NAP * 1e3 / marks["end"]       # the naps are not blocked time
        inside = sum(b - a for _, _, a, b in calls)
        assert share == pytest.approx(inside / marks["end"])


def test_in_flight_share():
    events = [("forward", -1, 0.0), ("launch", 0, 0.0), ("complete", 0, 10.0), ("launch", 1, 5.0),
              ("complete", 1, 15.0), ("launch", 2, 16.0)]              # bucket 2 never completed
    assert bucket_spans(events) == {0: (0.0, 10.0), 1: (5.0, 15.0)}
    assert in_flight_share(events, until=10.0) == pytest.approx(15 / 20)
    assert in_flight_share(events, until=0.0) == 0


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


def _wrong_columns(cols):
    """An exercise 03.3 result on rank 0 of 2 (hidden 10: blocks 0..4, 5..9) with `cols` off."""
    ref = torch.randn(6, 10)
    y = ref.clone()
    y[:, cols] += 1.0
    return {"y": y, "ref": ref, "lo": 0, "hi": 5, "phi_first": ref + 5.0}


@pytest.mark.parametrize("cols, says, not_says", [
    (list(range(10)), "every output column differs", "off-by-one"),
    ([4, 5], "off-by-one where blocks meet", "every output column"),
    ([2], "output column 2", "off-by-one")])
def test_row_first_message_suggests_off_by_one_only_at_block_edges(cols, says, not_says):
    with pytest.raises(AssertionError) as err:
        check_row_first_numbers(2, 0, _wrong_columns(cols))
    assert says in str(err.value) and not_says not in str(err.value)

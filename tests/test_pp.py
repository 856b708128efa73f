"""tplab.pp: schedules equal torch's, the executor trains like one process, formulas hold."""
from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.distributed.pipelining import Schedule1F1B, ScheduleGPipe, ScheduleInterleaved1F1B

import tplab
from tplab.pp import (
    bubble,
    gpipe,
    inflight_formula,
    interleaved_1f1b,
    one_f_one_b,
    peak_inflight,
    run_step,
    schedule,
    split_layers,
)


def torch_order(cls, p, m, rank, v=1):
    """torch.distributed.pipelining's schedule-order helper, as (kind, micro, chunk) triples."""
    if v == 1:
        order = cls(SimpleNamespace(num_stages=p), m).pipeline_order[rank]
    else:
        stages = [SimpleNamespace(num_stages=p * v, stage_index=c * p + rank, group_size=p,
                                  group_rank=rank, group=None) for c in range(v)]
        order = cls(stages, m).pipeline_order[rank]
    kinds = {"FORWARD": "F", "FULL_BACKWARD": "B"}
    return [(kinds[a.computation_type.name], a.microbatch_index, a.stage_index // p)
            for a in order if a is not None and a.computation_type.name in kinds]


@pytest.mark.parametrize("p,m", [(2, 1), (2, 4), (3, 3), (4, 4), (4, 8)])
def test_gpipe_is_torchs_order(p, m):
    for rank in range(p):
        assert [tuple(a) for a in gpipe(p, m, rank)] == torch_order(ScheduleGPipe, p, m, rank)


@pytest.mark.parametrize("p,m", [(2, 2), (2, 5), (3, 3), (3, 8), (4, 4), (4, 8)])
def test_one_f_one_b_is_torchs_order(p, m):
    for rank in range(p - 1):
        assert [tuple(a) for a in one_f_one_b(p, m, rank)] == torch_order(Schedule1F1B, p, m, rank)
    # torch 2.13's helper numbers the last stage's micro-batches from 1 (F1 .. Fm, no F0);
    # what Schedule1F1B executes there is F0 B0 F1 B1 ... (tests/test_pp_builtin.py records it)
    last = [tuple(a) for a in one_f_one_b(p, m, p - 1)]
    assert last == [(k, i, 0) for i in range(m) for k in "FB"]
    helper = torch_order(Schedule1F1B, p, m, p - 1)
    assert [k for k, _, _ in helper] == [k for k, _, _ in last]


@pytest.mark.parametrize("p,m,v", [(2, 2, 2), (2, 4, 2), (2, 8, 3), (4, 4, 2), (4, 8, 2)])
def test_interleaved_is_torchs_order(p, m, v):
    for rank in range(p):
        ours = [tuple(a) for a in interleaved_1f1b(p, m, v, rank)]
        assert ours == torch_order(ScheduleInterleaved1F1B, p, m, rank, v)


def test_inflight_formulas_match_the_lists():
    for p, m in itertools.product((1, 2, 3, 4), (1, 2, 3, 4, 8)):
        for rank in range(p):
            for name in ("gpipe", "1f1b"):
                assert peak_inflight(schedule(name, p, m, rank)) == inflight_formula(name, p, m,
                                                                                     rank)
            if m % p == 0:
                for v in (2, 3):
                    assert (peak_inflight(interleaved_1f1b(p, m, v, rank))
                            == inflight_formula("interleaved", p, m, rank, v))


def test_bad_schedules_are_refused():
    with pytest.raises(ValueError, match="multiple of p"):
        interleaved_1f1b(4, 6, 2, 0)
    with pytest.raises(ValueError, match="not a stage"):
        one_f_one_b(2, 4, 2)
    with pytest.raises(ValueError, match="unknown schedule"):
        schedule("zb", 2, 4, 0)


def test_bubble_conventions():
    assert bubble(8, 32) == pytest.approx(7 / 39)          # REFERENCES.md: 17.9 % of the step
    assert bubble(8, 32, convention="ideal") == pytest.approx(7 / 32)   # 21.9 % over ideal
    assert bubble(4, 8, v=2, convention="ideal") == pytest.approx(3 / 16)
    assert bubble(1, 5) == 0
    with pytest.raises(ValueError, match="convention"):
        bubble(2, 2, convention="fraction")


def test_split_layers_minimises_the_largest_stage():
    costs = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    for p in range(1, 6):
        stages = split_layers(costs, p)
        assert [i for r in stages for i in r] == list(range(len(costs)))
        worst = max(sum(costs[i] for i in r) for r in stages)
        brute = min(max(sum(costs[a:b]) for a, b in zip((0, *cuts), (*cuts, len(costs))))
                    for cuts in itertools.combinations(range(1, len(costs)), p - 1))
        assert worst == brute
    with pytest.raises(ValueError, match="at least one layer"):
        split_layers(costs, 11)


WIDTH, BATCH = 6, 24


def layers(n=7):
    torch.manual_seed(0)
    return [nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.Tanh()) for _ in range(n)]


def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(BATCH, WIDTH, generator=g), torch.randn(BATCH, WIDTH, generator=g)


def reference():
    """Loss and per-layer gradients of the whole model on one process."""
    model = nn.Sequential(*layers())
    x, y = data()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    return loss.item(), [[p.grad for p in layer.parameters()] for layer in model]


def train_on_ranks(cuts, name, ms, v=1):
    """On each rank: for each m, one step of `name`; this rank's loss and layer gradients."""
    rank, p = torch.distributed.get_rank(), torch.distributed.get_world_size()
    all_layers, (x, y) = layers(), data()
    stages = [all_layers[a:b] for a, b in zip(cuts, cuts[1:])]
    chunks = [nn.Sequential(*stages[c * p + rank]) for c in range(v)]
    out = []
    for m in ms:
        for c in chunks:
            c.zero_grad()
        step = run_step(chunks, schedule(name, p, m, rank, v), list(x.chunk(m)), list(y.chunk(m)),
                        nn.functional.mse_loss, recv_shape=(BATCH // m, WIDTH))
        grads = {c * p + rank: [[q.grad.clone() for q in layer.parameters()] for layer in ch]
                 for c, ch in enumerate(chunks)}
        out.append((m, step.loss, grads, step.peak_inflight))
    return out


def assert_like_one_process(results, cuts, name, p, v=1):
    loss, grads = reference()
    for per_rank in zip(*results):
        for rank, (m, step_loss, stage_grads, inflight) in enumerate(per_rank):
            assert inflight == inflight_formula(name, p, m, rank, v), (name, p, m, rank)
            if rank == p - 1:
                assert step_loss == pytest.approx(loss, rel=1e-5)
            for s, got in stage_grads.items():
                for layer, g in zip(range(cuts[s], cuts[s + 1]), got):
                    for a, b in zip(g, grads[layer]):
                        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("p,cuts", [(2, [0, 5, 7]), (3, [0, 1, 3, 7]), (4, [0, 3, 4, 6, 7])])
@pytest.mark.parametrize("name", ["gpipe", "1f1b"])
def test_pipeline_training_equals_one_process(p, cuts, name):
    results = tplab.launch(train_on_ranks, p, cuts, name, [1, 3, 4, 8], backend="gloo",
                           timeout=60)
    assert_like_one_process(results, cuts, name, p)


def test_interleaved_training_equals_one_process():
    cuts = [0, 2, 3, 5, 7]                   # 4 virtual stages over 2 ranks, uneven
    results = tplab.launch(train_on_ranks, 2, cuts, "interleaved", [2, 4, 8], 2,
                           backend="gloo", timeout=60)
    assert_like_one_process(results, cuts, "interleaved", 2, v=2)


def saved_bytes_on_ranks(m):
    """Peak activation bytes of GPipe and 1F1B on this rank, and one micro-batch's worth."""
    rank, p = torch.distributed.get_rank(), torch.distributed.get_world_size()
    chunk = nn.Sequential(*layers(p)[rank:rank + 1])
    x, y = data()
    peaks = {}
    for name in ("gpipe", "1f1b"):
        step = run_step([chunk], schedule(name, p, m, rank), list(x.chunk(m)), list(y.chunk(m)),
                        nn.functional.mse_loss, recv_shape=(BATCH // m, WIDTH))
        peaks[name] = step.peak_saved_bytes
    return peaks


def test_1f1b_keeps_fewer_activations_than_gpipe():
    m, p = 8, 3
    for rank, peaks in enumerate(tplab.launch(saved_bytes_on_ranks, p, m, backend="gloo",
                                              timeout=60)):
        # Linear saves its input, Tanh its output: 2 tensors of (BATCH/m) x WIDTH fp32
        one = 2 * (BATCH // m) * WIDTH * 4
        assert peaks == {"gpipe": m * one, "1f1b": min(p - rank, m) * one}, (rank, peaks)


def mismatched(p):
    rank = torch.distributed.get_rank()
    chunk = nn.Linear(WIDTH, WIDTH)
    m = 3 if rank == 1 else 2             # rank 1 waits for a third micro-batch never sent
    with torch.no_grad():
        run_step([chunk], [a for a in gpipe(p, m, rank) if a.kind == "F"],
                 [torch.zeros(1, WIDTH)] * m, recv_shape=(1, WIDTH))


def test_a_receive_that_never_comes_ends_at_the_deadline_naming_the_rank(timed_out):
    report = str(timed_out(mismatched, 2, 2, backend="gloo", timeout=5))
    assert "rank 1" in report and "recv" in report, report


def events_on_ranks():
    rank, p = torch.distributed.get_rank(), torch.distributed.get_world_size()
    x, y = data()
    step = run_step([nn.Sequential(*layers(p)[rank:rank + 1])], schedule("1f1b", p, 4, rank),
                    list(x.chunk(4)), list(y.chunk(4)), nn.functional.mse_loss,
                    recv_shape=(BATCH // 4, WIDTH))
    return step.events


def test_timeline_records_every_transfer_and_the_idle_gaps():
    from tplab.pp.timeline import busy, idle_periods, makespan
    per_rank = tplab.launch(events_on_ranks, 2, backend="gloo", timeout=60)
    end = makespan(per_rank)
    for rank, events in enumerate(per_rank):
        kinds = [e.kind for e in events]
        # 4 activations one way, 4 gradients the other: each rank sends 4 and receives 4
        assert kinds.count("send") == 4 and kinds.count("recv") == 4, kinds
        assert kinds.count("F") == 4 and kinds.count("B") == 4
        assert all(0 <= e.start <= e.end <= end for e in events)
        gaps = idle_periods(events, end)
        assert sum(b - a for a, b in gaps) == pytest.approx(end - busy(events), abs=1e-9)


def test_layer_bytes_takes_a_module_or_a_list_of_modules_per_layer():
    from tplab.pp import layer_bytes
    a, b = nn.Linear(3, 4), nn.Linear(4, 2)          # 16 and 10 fp32 parameters
    assert layer_bytes([a, [a, b], (b,)]) == [64, 104, 40]

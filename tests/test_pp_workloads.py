"""Controlled-time stages: the bubble measured on real ranks is the schedule's, not the
machine's. Timing bounds here are loose on purpose and use the least disturbed of three steps:
a busy machine delays the ranks' wake-ups, which adds idle time and never removes it. How close
to the formula a run comes (±0.05) is bench/pipeline.py's to report."""
from __future__ import annotations

import time

import pytest
import torch

import tplab
from tplab.pp import bubble, inflight_formula
from tplab.pp.timeline import bubble_measured
from tplab.pp.workloads import TimedStage, bubble_cases, bubble_row, cut, measure_bubble, mlp


def test_timed_stage_takes_its_time_and_is_a_scaled_identity():
    stage = TimedStage(4, t_f=0.02, t_b=0.05)
    with torch.no_grad():
        stage.scale.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    x = torch.ones(2, 4, requires_grad=True)
    t0 = time.perf_counter()
    y = stage(x)
    t1 = time.perf_counter()
    y.sum().backward()
    t2 = time.perf_counter()
    assert t1 - t0 >= 0.02 and t2 - t1 >= 0.05
    assert torch.equal(y, x * stage.scale)
    assert torch.equal(x.grad, stage.scale.detach().expand(2, 4))
    assert torch.equal(stage.scale.grad, torch.full((4,), 2.0))


def test_mlp_cuts_into_equal_stages_sharing_parameters():
    model = mlp(6, 5)
    stages = cut(model, 3)
    x = torch.randn(2, 5)
    assert torch.equal(stages[2](stages[1](stages[0](x))), model(x))
    assert sum(len(s) for s in stages) == 6
    with pytest.raises(ValueError, match="equal stages"):
        cut(model, 4)


def test_bubble_cases_are_the_lessons_table():
    cases = bubble_cases()
    assert len(cases) == 2 * 4 * 2 + 5
    assert ("interleaved", 4, 4, 2) in cases and ("interleaved", 4, 2, 2) not in cases


def measured(name, p, m, v, t_f=0.02, t_b=0.04):
    """(bubble_row, the least disturbed step's bubble share) of 3 timed steps on p ranks."""
    got = tplab.launch(measure_bubble, p, name, m, v, t_f, t_b, 4, 3, 1, backend="gloo",
                       timeout=60)
    steps = [[r["events"][i] for r in got] for i in range(3)]
    return bubble_row(name, p, m, v, got), min(bubble_measured(ev) for ev in steps)


@pytest.mark.parametrize("name,p,m,v", [("1f1b", 2, 4, 1), ("gpipe", 4, 4, 1),
                                        ("interleaved", 4, 4, 2)])
def test_measured_bubble_follows_the_closed_form(name, p, m, v):
    row, best = measured(name, p, m, v)
    for conv in ("total", "ideal"):
        assert row[f"formula_{conv}"] == bubble(p, m, v, conv)
    # at least the formula's idle time, and nearer to it than to ranks taking turns (1 − 1/p)
    assert row["formula_total"] - 0.02 <= best < (row["formula_total"] + 1 - 1 / p) / 2
    assert row["peak_inflight"] == [inflight_formula(name, p, m, r, v) for r in range(p)]
    saved = row["peak_saved_bytes"]
    assert saved == sorted(saved, reverse=True) and saved[-1] > 0


def test_interleaving_beats_what_1f1b_could_do_at_best():
    """Interleaved 1F1B (v = 2) idles less than 1F1B's closed form: no 1F1B run can match it.
    Longer stages here, since interleaving doubles the hops whose delays add idle time."""
    interleaved = measured("interleaved", 4, 4, 2, t_f=0.04, t_b=0.08)[1]
    assert interleaved < bubble(4, 4) - 0.04

"""Lesson 05's pictures draw what they are given: one row per rank, one box per F/B, both
bubble conventions, in-flight bars per rank and schedule."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from tplab.pp import Event, bubble, inflight_formula, schedule  # noqa: E402
from tplab.viz import pipeline as vp  # noqa: E402


def simulated(name, p, m, v=1, t_f=1.0, t_b=2.0):
    """Events of an ideal run (no communication cost) of the schedule's action lists."""
    actions = [schedule(name, p, m, r, v) for r in range(p)]
    done, free, at, events = {}, [0.0] * p, [0] * p, [[] for _ in range(p)]
    last = p * v - 1
    while any(at[r] < len(actions[r]) for r in range(p)):
        for r in range(p):
            while at[r] < len(actions[r]):
                a = actions[r][at[r]]
                s = a.chunk * p + r
                if a.kind == "F":
                    need = None if s == 0 else ("F", a.micro, s - 1)
                else:
                    need = ("F", a.micro, s) if s == last else ("B", a.micro, s + 1)
                if need is not None and need not in done:
                    break
                start = max(free[r], done.get(need, 0.0))
                free[r] = start + (t_f if a.kind == "F" else t_b) / v
                done[a.kind, a.micro, s] = free[r]
                events[r].append(Event(a.kind, a.micro, a.chunk, start, free[r]))
                at[r] += 1
    return events


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_simulated_run_has_the_formula_bubble():
    """The helper the pictures are tested with is itself right."""
    from tplab.pp.timeline import bubble_measured
    for name, p, m, v in (("gpipe", 4, 8, 1), ("1f1b", 2, 3, 1), ("interleaved", 4, 8, 2)):
        got = bubble_measured(simulated(name, p, m, v), "total")
        assert got == pytest.approx(bubble(p, m, v))


@pytest.mark.parametrize("name,p,m,v", [("1f1b", 4, 6, 1), ("interleaved", 2, 4, 2)])
def test_gantt_one_row_per_rank_one_box_per_pass(name, p, m, v):
    events = simulated(name, p, m, v)
    events[0].append(Event("recv", 0, 0, 0.0, 0.5))  # receives are not boxes
    fig = vp.gantt(events)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"rank {r}" for r in range(p)]
    assert len(ax.patches) == p + 2 * m * v * p  # an idle background per rank, then F and B
    labels = {t.get_text() for t in ax.texts}
    assert ("3.1" in labels) == (v > 1) and ("3" in labels) == (v == 1)
    assert f"{bubble(p, m, v):.0%}" in ax.get_title()
    assert ax.get_xlim()[1] >= 1e3 * max(e.end for r in events for e in r)


def test_gantt_draws_on_a_given_axis_with_a_title():
    fig, ax = plt.subplots()
    assert vp.gantt(simulated("gpipe", 2, 2), ax=ax, title="GPipe") is fig
    assert ax.get_title() == "GPipe"


def test_bubble_vs_formula_one_point_per_row_and_convention():
    rows = [{"schedule": name, "p": p, "m": m, "v": v,
             **{f"{kind}_{conv}": bubble(p, m, v, conv) + (0.01 if kind == "measured" else 0)
                for kind in ("measured", "formula") for conv in ("total", "ideal")}}
            for name, p, m, v in (("gpipe", 2, 4, 1), ("1f1b", 4, 8, 1), ("interleaved", 4, 8, 2))]
    fig = vp.bubble_vs_formula(rows)
    left, right = fig.axes
    assert len(left.collections) == len(right.collections) == len(rows) + 1  # + the band
    assert "m+p−1" in left.get_title() and "(v·m)" in right.get_title()
    assert right.get_xlim()[1] >= bubble(2, 4, 1, "ideal")


def test_inflight_bars_per_rank_and_schedule():
    p, m = 4, 8
    peaks = {name: [inflight_formula(name, p, m, r) for r in range(p)]
             for name in ("gpipe", "1f1b")}
    saved = {name: [n * 4096 for n in v] for name, v in peaks.items()}
    fig = vp.inflight(peaks, saved, formula=peaks)
    counts, kib = fig.axes
    heights = [b.get_height() for b in counts.patches]
    assert heights == peaks["gpipe"] + peaks["1f1b"]
    assert [b.get_height() for b in kib.patches] == [4 * n for n in heights]
    assert len(vp.inflight(peaks).axes) == 1

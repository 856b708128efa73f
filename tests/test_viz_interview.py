"""Lesson 08's pictures draw what they are given: the bank's bars add up to its items per topic
and kind, and a time-share bar is its computing share plus its lost share."""
from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from tplab.viz import interview as vi  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _item(topic, kind):
    return SimpleNamespace(topic=topic, kind=kind)


def test_bank_bars_count_each_topic_and_kind():
    items = [_item("pipeline", "numeric")] * 3 + [_item("pipeline", "code")] + \
            [_item("serving", "choice")] * 2
    ax = vi.draw_bank(items).axes[0]
    widths = {(bars.get_label(), round(p.get_y() + p.get_height() / 2)): p.get_width()
              for bars in ax.containers for p in bars}
    # topics in first-seen order, top to bottom: pipeline at y=0, serving at y=1
    assert widths[("numeric", 0)] == 3 and widths[("code", 0)] == 1
    assert widths[("choice", 1)] == 2 and widths[("numeric", 1)] == 0
    assert [t.get_text() for t in ax.texts] == ["4", "2"]
    assert "6 items" in ax.get_title()


def test_the_real_bank_draws_every_topic():
    from tplab.interview import BANK, TOPICS
    ax = vi.draw_bank(BANK).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(TOPICS)
    assert sum(int(t.get_text()) for t in ax.texts) == len(BANK)


def test_time_shares_split_each_bar_and_label_it():
    rows = [{"label": "TP = 2", "lost": 0.25, "what": "all-reduce"},
            {"label": "replicas", "lost": 0.0, "what": "nothing between workers"}]
    ax = vi.draw_time_shares(rows).axes[0]
    computing, lost = ax.containers
    assert [p.get_width() for p in computing] == [0.75, 1.0]
    assert [p.get_width() for p in lost] == [0.25, 0.0]
    assert [p.get_x() for p in lost] == [0.75, 1.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "TP = 2\n25%: all-reduce", "replicas\n0%: nothing between workers"]


def test_time_shares_refuse_a_share_outside_0_1():
    with pytest.raises(ValueError, match="TP"):
        vi.draw_time_shares([{"label": "TP", "lost": 1.2, "what": "x"}])
    with pytest.raises(ValueError, match="no items"):
        vi.draw_bank([])

"""tplab.timing: summaries are real measurements; time_calls times only what it is given."""
import time

import pytest

from tplab.timing import median, percentile, read_bandwidth_gbs, stopwatch, summarize, time_calls


def test_percentile_is_nearest_rank():
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 9.0, 8.0, 7.0, 6.0]
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 1.0) == 10.0
    assert percentile(values, 0.1) == 2.0       # round(0.9) -> index 1
    assert percentile(values, 0.9) == 9.0       # round(8.1) -> index 8
    assert median(values) == 5.5
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        percentile(values, 1.5)


def test_summarize_and_scale():
    s = summarize([0.003, 0.001, 0.002])
    assert (s.median, s.min, s.n) == (0.002, 0.001, 3)
    us = s.scaled(1e6)
    assert us.median == pytest.approx(2000.0) and us.p90 == pytest.approx(3000.0)


def test_time_calls_warms_up_and_runs_before_untimed():
    calls, befores = [], []
    times = time_calls(lambda: (calls.append(1), time.sleep(0.002)), 3, warmup=2,
                       before=lambda: (befores.append(1), time.sleep(0.1)))
    assert len(calls) == 5 and len(befores) == 3 and len(times) == 3
    assert all(0.0015 < t < 0.08 for t in times), times   # the 100 ms `before` is not counted


def test_stopwatch():
    with stopwatch() as sw:
        time.sleep(0.01)
    assert 0.009 < sw.seconds < 0.5


def test_read_bandwidth_gbs_reads_what_it_says_and_puts_threads_back():
    import torch

    threads = torch.get_num_threads()
    for product in (False, True):
        gbs = read_bandwidth_gbs(8, 3, product=product, threads=1)
        assert 0.05 < gbs < 10_000      # a real rate: 8 MiB read in a plausible time
    assert torch.get_num_threads() == threads
    seen = []  # `stat` picks from one time per timed call
    read_bandwidth_gbs(8, 4, stat=lambda times: seen.append(list(times)) or min(times))
    assert len(seen[0]) == 4 and all(t > 0 for t in seen[0])

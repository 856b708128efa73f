"""Timing code the one way the benchmarks and lessons do it: warm up, time each call with
`time.perf_counter`, and summarise with the median and the 10th and 90th percentiles.

Why per call and the median: on a small shared machine a few calls are slowed by something
else (another process, a page fault, the scheduler). A mean would carry those outliers; the
median of many single calls does not, and p10–p90 shows how wide the spread was. Why a warm-up:
the first call pays for one-time work (allocating buffers, building a route, faulting pages in)
that later calls do not.

    times = time_calls(lambda: dist.all_reduce(x), 100, warmup=2)   # seconds, one per call
    s = summarize(times)                                            # s.median, s.p10, s.p90, s.min
    with stopwatch() as sw:                                         # one longer piece of work
        tplab.launch(fn, 2)
    sw.seconds
    read_bandwidth_gbs(256)                                         # memory read GB/s, timed so
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


def time_calls(fn: Callable[[], object], repeats: int, *, warmup: int = 1,
               before: Callable[[], object] | None = None) -> list[float]:
    """Seconds of each of `repeats` calls of `fn`, after `warmup` untimed calls. `before`, if given,
    runs untimed before each timed call (e.g. `dist.barrier`, so every rank starts together)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median(values: Sequence[float]) -> float:
    """The middle value (the mean of the two middle ones for an even count)."""
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The value at fraction `q` (0..1) of the sorted values, nearest rank: an actual measurement,
    never an interpolation between two (index round(q·(n−1)))."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 1:
        raise ValueError(f"q must be between 0 and 1, got {q}")
    ordered = sorted(values)
    return ordered[round(q * (len(ordered) - 1))]


@dataclass(frozen=True)
class Summary:
    """Median, spread and best of a list of timings, in the unit they came in."""
    median: float
    p10: float
    p90: float
    min: float
    n: int

    def scaled(self, factor: float) -> Summary:
        """The same summary in another unit, e.g. `.scaled(1e6)` for µs from seconds."""
        return Summary(self.median * factor, self.p10 * factor, self.p90 * factor,
                       self.min * factor, self.n)


def summarize(times: Sequence[float]) -> Summary:
    """Median, p10, p90 and minimum of `times`."""
    return Summary(median(times), percentile(times, 0.1), percentile(times, 0.9), min(times),
                   len(times))


def measure(fn: Callable[[], object], repeats: int, *, warmup: int = 1,
            before: Callable[[], object] | None = None) -> Summary:
    """`summarize(time_calls(...))`: the summary of `repeats` timed calls of `fn`, in seconds."""
    return summarize(time_calls(fn, repeats, warmup=warmup, before=before))


@dataclass
class Elapsed:
    """What `stopwatch` yields; `seconds` is filled in when the `with` block ends."""
    seconds: float = float("nan")


@contextmanager
def stopwatch() -> Iterator[Elapsed]:
    """Time one `with` block with `time.perf_counter` (for work too long or too varied to repeat
    in a loop: one launch, one training run)."""
    elapsed = Elapsed()
    t0 = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.seconds = time.perf_counter() - t0


def read_bandwidth_gbs(mib: int = 256, repeats: int = 10, *, product: bool = False,
                       stat: Callable[[Sequence[float]], float] = min,
                       threads: int | None = None) -> float:
    """GB/s this process reads from memory: `mib` MiB of float32, read once per timed call.

    `product=False` sums a vector (`x.sum()`: the machine's read bandwidth); `product=True`
    multiplies a [rows, 4096] matrix by a vector (`w @ v`: how decoding reads a weight matrix,
    memory-bound, one multiply-add per weight read). `stat` picks the call: `min`, the least
    disturbed (what the memory can do), or `median` (what a typical call got). `threads`, if
    given, is torch's thread count while measuring (put back afterwards): bandwidth grows with
    the cores reading.
    """
    import torch  # here: the timing helpers above need no torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        if product:
            w, v = torch.ones(mib * 2**20 // 4 // 4096, 4096), torch.ones(4096)
            times = time_calls(lambda: w @ v, repeats)
        else:
            w = torch.ones(mib * 2**20 // 4)
            times = time_calls(w.sum, repeats)
    finally:
        torch.set_num_threads(before)
    return w.numel() * 4 / stat(times) / 1e9

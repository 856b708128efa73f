"""All-reduce three ways, side by side: gloo, tplab's ring from send/recv, tplab's fast path.

    python bench/collectives.py            # ~20 s on 2 cores
    python bench/collectives.py --quick    # ~7 s: fewer iterations (lesson 01 runs this)

Prints one JSON object per line, e.g.
    {"impl": "gloo", "bytes": 2304, "world_size": 2, "median_us": 451.1}
impl: "gloo"  torch.distributed.all_reduce (the backend's own algorithm, over loopback TCP)
      "ring"  tplab.comm.ring_all_reduce (reduce-scatter + all-gather from isend/recv)
      "tplab" tplab.comm.all_reduce (shared memory between CPU ranks on one host)
bytes: the tensor each rank contributes (float32); median_us: median time of one call.

Method: one launch of `world_size` ranks. Per size, every implementation is first checked
against gloo's result, then warmed up, then timed call by call, back to back (each
all-reduce synchronises the ranks by itself; no barrier inside the timed loop). The
calls are interleaved: several rounds, each running a block of calls of every
implementation (the order rotating per round), so a burst of noise from elsewhere on
the machine hits all three alike. Each rank takes the median over its calls; the slower
rank's median is printed. Iterations shrink with size to keep the run short.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import torch
import torch.distributed as dist

import tplab
from tplab import comm
from tplab.timing import median, time_calls

# bytes: one SmolLM2-135M hidden state, 64 KiB, 1 MiB, 16 MiB
SIZES = [576 * 4, 64 << 10, 1 << 20, 16 << 20]
ITERS = {576 * 4: 2000, 64 << 10: 1000, 1 << 20: 300, 16 << 20: 40}
QUICK_ITERS = {576 * 4: 200, 64 << 10: 100, 1 << 20: 30, 16 << 20: 6}
IMPLS = ["gloo", "ring", "tplab"]


def _impl(name):
    return {"gloo": dist.all_reduce, "ring": comm.ring_all_reduce, "tplab": comm.all_reduce}[name]


def _check_correct(name: str, numel: int) -> None:
    """Integer-valued data, exact in any summation order: the result must equal gloo's."""
    rank = dist.get_rank()
    x = ((torch.arange(numel) * 7 + rank * 13) % 101 - 50).float()
    expected = x.clone()
    dist.all_reduce(expected)
    _impl(name)(x)
    if not torch.equal(x, expected):
        raise AssertionError(f"{name}: wrong all-reduce result for {numel} floats on rank {rank}")


def run_sizes(sizes: list[int], iters: dict[int, int], rounds: int = 10) -> dict:
    """On every rank: {(impl, bytes): median seconds of one call on this rank}."""
    medians = {}
    for nbytes in sizes:
        numel = nbytes // 4
        x = torch.zeros(numel)  # zeros stay zeros: repeated in-place sums never overflow
        n_iter = iters[nbytes]
        n_rounds = min(rounds, n_iter)
        block = math.ceil(n_iter / n_rounds)
        times = {name: [] for name in IMPLS}
        for name in IMPLS:
            if name != "gloo":  # gloo is the reference the others are checked against
                _check_correct(name, numel)
            for _ in range(3 if nbytes < (4 << 20) else 1):  # warm-up
                _impl(name)(x)
        for round_ in range(n_rounds):
            order = IMPLS[round_ % len(IMPLS):] + IMPLS[:round_ % len(IMPLS)]
            for name in order:
                fn = _impl(name)
                dist.barrier()
                times[name] += time_calls(lambda: fn(x), block, warmup=0)
        for name in IMPLS:
            medians[(name, nbytes)] = median(times[name])
    return medians


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a few seconds)")
    parser.add_argument("--world-size", type=int, default=2, help="ranks (default: 2)")
    args = parser.parse_args(argv)
    iters = QUICK_ITERS if args.quick else ITERS
    per_rank = tplab.launch(run_sizes, args.world_size, SIZES, iters, timeout=600)
    for nbytes in SIZES:
        for name in IMPLS:
            slowest = max(rank_medians[(name, nbytes)] for rank_medians in per_rank)
            print(json.dumps({"impl": name, "bytes": nbytes, "world_size": args.world_size,
                              "median_us": round(slowest * 1e6, 1)}))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

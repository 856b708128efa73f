"""Data-parallel training steps three ways, side by side: tplab naive, tplab bucketed, PyTorch DDP.

    python bench/ddp.py            # ~30 s on 2 cores
    python bench/ddp.py --quick    # a few seconds

Prints one JSON object per line, e.g.
    {"impl": "bucketed", "world_size": 2, "median_step_ms": 41.3}
impl: "naive"     tplab.dp.DataParallel(bucket_mb=0): one all-reduce per parameter after backward,
                  each waited for
      "bucketed"  tplab.dp.DataParallel(bucket_mb=25): async all-reduce per bucket, during backward
(both through tplab.comm.all_reduce on torch.distributed's route: gloo here, as DDP's)
      "torch_ddp" torch.nn.parallel.DistributedDataParallel(bucket_cap_mb=25)

Method: one launch of 2 ranks; the same model (an MLP of many small layers, so that
per-parameter all-reduces hurt), the same data and optimizer for all three. Steps are
interleaved (one step of each implementation per round, the order rotating), so noise on
the machine hits all alike. A step is forward, backward, gradient sync, SGD step, timed
on each rank (tplab.timing.time_calls, after a barrier); the slower rank's median over the
rounds is printed.
"""
from __future__ import annotations

import argparse
import functools
import json

import torch
import torch.distributed as dist
from torch import nn

import tplab
from tplab.dp import DataParallel
from tplab.timing import median, time_calls

IMPLS = ["naive", "bucketed", "torch_ddp"]


def make_model(width: int, depth: int) -> nn.Module:
    torch.manual_seed(0)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.LayerNorm(width), nn.GELU()]
    return nn.Sequential(*layers, nn.Linear(width, 1))


def wrap(impl: str, model: nn.Module):
    if impl == "naive":
        return DataParallel(model, bucket_mb=0)
    if impl == "bucketed":
        return DataParallel(model, bucket_mb=25)
    return nn.parallel.DistributedDataParallel(model, bucket_cap_mb=25)


def step(model, opt, x, y) -> None:
    opt.zero_grad(set_to_none=False)
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    if isinstance(model, DataParallel):
        model.finish_gradient_sync()  # DDP does the same inside backward
    opt.step()


def worker(rounds: int, width: int, depth: int, batch: int) -> dict:
    g = torch.Generator().manual_seed(dist.get_rank())
    x, y = torch.randn(batch, width, generator=g), torch.randn(batch, 1, generator=g)
    runs = {}
    for impl in IMPLS:
        model = wrap(impl, make_model(width, depth))
        runs[impl] = (model, torch.optim.SGD(model.parameters(), lr=1e-3))
    steps = {impl: functools.partial(step, *runs[impl], x, y) for impl in IMPLS}
    for impl in IMPLS:  # warm-up
        time_calls(steps[impl], 0, warmup=3)
    times = {impl: [] for impl in IMPLS}
    for r in range(rounds):  # one timed step of each per round, every rank starting together
        for impl in IMPLS[r % 3:] + IMPLS[:r % 3]:
            times[impl] += time_calls(steps[impl], 1, warmup=0, before=dist.barrier)
    return {impl: median(ts) * 1e3 for impl, ts in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=24,
                        help="hidden layers (4 parameter tensors each: linear and norm "
                             "weight and bias)")
    parser.add_argument("--batch", type=int, default=32, help="rows per rank")
    args = parser.parse_args(argv)
    rounds = 10 if args.quick else 60
    per_rank = tplab.launch(worker, args.world_size, rounds, args.width, args.depth, args.batch,
                            timeout=600)
    for impl in IMPLS:
        slowest = max(r[impl] for r in per_rank)
        print(json.dumps({"impl": impl, "world_size": args.world_size,
                          "median_step_ms": round(slowest, 3)}))


if __name__ == "__main__":
    main()

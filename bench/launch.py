"""What starting ranks costs, per start method, side by side in one run.

    python bench/launch.py             # ~2.5 min on 2 cores
    python bench/launch.py --quick     # fewer repeats

Prints one JSON object per line, e.g.
    {"method": "forkserver", "world_size": 2, "threads": 2, "median_ms": 95.1, "first_ms": 1890.2}
method: "fork"        ranks are copies of this process (tplab's default for one thread per rank
                      on Linux)
        "forkserver"  ranks forked from a clean server that imported torch (the default for
                      threads > 1)
        "spawn"       each rank a fresh interpreter that imports torch itself
median_ms: one `tplab.launch` of a function that returns at once, from call to results
(fork, start, rendezvous, finish-line barrier, teardown), median over the repeats;
first_ms: the first launch of that method in this process (forkserver starts its server then).

Method: the parent first runs a two-thread matrix product, as a notebook does, so the
forkserver rows are measured in the situation they exist for. The methods are
interleaved round by round, so noise from elsewhere hits them alike. `tplab.launch` and
`torch.multiprocessing.spawn` (PyTorch's own launcher, which spawns) are both timed.
"""
from __future__ import annotations

import argparse
import json

import torch
import torch.distributed as dist

import tplab
from tplab.timing import median, stopwatch


def rank_of():
    return dist.get_rank()


def _torch_spawn_worker(rank, world_size, port):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size)
    dist.barrier()
    dist.destroy_process_group()


def torch_spawn(world_size: int) -> None:
    import socket

    import torch.multiprocessing as tmp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp.spawn(_torch_spawn_worker, args=(world_size, port), nprocs=world_size, join=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 10")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    repeats = 3 if args.quick else 10
    torch.set_num_threads(2)
    a = torch.randn(1024, 1024)
    (a @ a).sum().item()  # the parent has run OpenMP, as every notebook has

    configs = [("fork", 1), ("forkserver", 1), ("forkserver", 2), ("spawn", 1),
               ("torch.mp.spawn", 1)]
    times = {(m, t, n): [] for m, t in configs for n in args.sizes}
    first = {}
    for round_ in range(repeats + 1):
        for method, threads in configs:
            for n in args.sizes:
                with stopwatch() as took:
                    if method == "torch.mp.spawn":
                        torch_spawn(n)
                    else:
                        got = tplab.launch(rank_of, n, threads=threads, start_method=method,
                                           timeout=120)
                        assert got == list(range(n))
                ms = took.seconds * 1e3
                key = (method, threads, n)
                if key in first or method != "forkserver":
                    times[key].append(ms)
                first.setdefault(key, ms)
    for (method, threads, n), ms in times.items():
        print(json.dumps({"method": method, "world_size": n, "threads": threads,
                          "median_ms": round(median(ms), 1),
                          "first_ms": round(first[(method, threads, n)], 1)}), flush=True)


if __name__ == "__main__":
    main()

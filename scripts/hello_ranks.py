"""Lesson 00's worker as a script: the same function under `tplab.launch` and under `torchrun`.

    python scripts/hello_ranks.py                                   # tplab.launch forks 2 ranks
    torchrun --standalone --nproc-per-node 2 scripts/hello_ranks.py # torchrun starts them
    torchrun --nnodes 2 --node-rank N --nproc-per-node 8 \\
             --rdzv-backend c10d --rdzv-endpoint HOST:29500 scripts/hello_ranks.py   # 2 machines
"""
import os

import torch
import torch.distributed as dist

import tplab


def hello():
    """Every rank says who it is, then all agree on a sum."""
    rank, world = dist.get_rank(), dist.get_world_size()
    on_gpu = dist.get_backend() == "nccl"
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if on_gpu else "cpu"
    total = torch.tensor([float(rank)], device=device)
    dist.all_reduce(total)  # sum of 0 + 1 + ... + (world - 1), on every rank
    return f"rank {rank}/{world} ({dist.get_backend()}): sum of ranks = {total.item():g}"


if __name__ == "__main__":
    world = int(os.environ.get("WORLD_SIZE", 2))
    results = tplab.launch(hello, world)
    if int(os.environ.get("RANK", 0)) == 0:
        for line in results:
            print(line)

"""What runs inside the stages when lesson 05 measures a pipeline rather than trains one.

Why controlled time. The bubble formulas assume equal stages whose forward takes t_f and
backward t_b. Four ranks sharing two cores are nothing like that: their matrix products
compete for the cores, so the measured idle time would be the machine's, not the schedule's.
`TimedStage` makes a stage's forward and backward *take* t_f and t_b (a sleep inside a custom
autograd function: time passes, no core is used) while a real tensor still flows through it,
so every send and receive moves real data between real ranks. Then the measured idle fraction
can be held against the closed form (`tplab.pp.bubble`), convention by convention.

`mlp` and `cut` are the other workload: a small real model (Linear + tanh layers) cut into
equal stages, for comparing tplab's executor with `torch.distributed.pipelining` on real
compute and for checking losses and gradients against one process.

    got = tplab.launch(measure_bubble, 4, "1f1b", 8, timeout=60)     # on 4 ranks
    row = bubble_row("1f1b", 4, 8, 1, got)    # measured and closed form, both conventions
"""
from __future__ import annotations

import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tplab.pp.bubble import bubble
from tplab.pp.executor import run_step
from tplab.pp.schedules import schedule
from tplab.pp.timeline import bubble_measured
from tplab.timing import median

__all__ = ["TimedStage", "mlp", "cut", "measure_bubble", "bubble_row", "bubble_cases",
           "T_F", "T_B", "DIM"]

T_F, T_B = 0.020, 0.040   # seconds: a backward costs about two forwards
DIM = 256                 # the activation crossing each stage boundary: [rows, DIM]


class _Sleep(torch.autograd.Function):
    """Identity that takes t_f seconds forward and t_b seconds backward."""

    @staticmethod
    def forward(ctx, x, t_f: float, t_b: float):
        time.sleep(t_f)
        ctx.t_b = t_b
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        time.sleep(ctx.t_b)
        return grad, None, None


class TimedStage(nn.Module):
    """A stage whose forward takes t_f and backward t_b seconds: y = sleep(x · scale)."""

    def __init__(self, dim: int = DIM, t_f: float = T_F, t_b: float = T_B):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))
        self.t_f, self.t_b = t_f, t_b

    def forward(self, x):
        return _Sleep.apply(x * self.scale, self.t_f, self.t_b)


def mlp(layers: int, dim: int, seed: int = 0) -> nn.Sequential:
    """`layers` blocks of Linear(dim, dim) + tanh, the same weights for the same seed."""
    torch.manual_seed(seed)
    return nn.Sequential(*[nn.Sequential(nn.Linear(dim, dim), nn.Tanh()) for _ in range(layers)])


def cut(model: nn.Sequential, p: int) -> list[nn.Sequential]:
    """The model's blocks in p contiguous, equal stages (sharing its parameters)."""
    n = len(model)
    if n % p:
        raise ValueError(f"{n} blocks do not cut into {p} equal stages")
    k = n // p
    return [nn.Sequential(*model[i * k:(i + 1) * k]) for i in range(p)]


def measure_bubble(name: str, m: int, v: int = 1, t_f: float = T_F, t_b: float = T_B,
                   rows: int = 4, repeats: int = 3, warmup: int = 1) -> dict:
    """On each of p ranks (inside `tplab.launch`): run schedule `name` with equal TimedStage
    chunks (each of the v chunks takes t_f/v and t_b/v, so a rank's work per micro-batch is
    t_f + t_b whatever v), `warmup` untimed steps then `repeats` timed ones.

    Returns {"events": [this rank's events, one list per timed step], "peak_inflight",
    "peak_saved_bytes"}; `bubble_row` turns every rank's into measured bubbles."""
    p, rank = dist.get_world_size(), dist.get_rank()
    chunks = [TimedStage(DIM, t_f / v, t_b / v) for _ in range(v)]
    actions = schedule(name, p, m, rank, v)
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(rows, DIM, generator=g) for _ in range(m)]
    targets = [torch.randn(rows, DIM, generator=g) for _ in range(m)]
    events = []
    for i in range(warmup + repeats):
        for c in chunks:
            c.zero_grad()
        step = run_step(chunks, actions, inputs if rank == 0 else None,
                        targets if rank == p - 1 else None, F.mse_loss, recv_shape=(rows, DIM))
        if i >= warmup:
            events.append(step.events)
    return {"events": events, "peak_inflight": step.peak_inflight,
            "peak_saved_bytes": step.peak_saved_bytes}


def bubble_row(name: str, p: int, m: int, v: int, per_rank: list[dict]) -> dict:
    """Measured bubble (median over the timed steps) and closed form, in both conventions,
    from every rank's `measure_bubble` result (rank order)."""
    steps = len(per_rank[0]["events"])
    runs = [[r["events"][i] for r in per_rank] for i in range(steps)]
    row = {"schedule": name, "p": p, "m": m, "v": v}
    for conv in ("total", "ideal"):
        row[f"measured_{conv}"] = median([bubble_measured(ev, conv) for ev in runs])
        row[f"formula_{conv}"] = bubble(p, m, v, conv)
    row["peak_inflight"] = [r["peak_inflight"] for r in per_rank]
    row["peak_saved_bytes"] = [r["peak_saved_bytes"] for r in per_rank]
    return row


def bubble_cases(ps=(2, 4), ms=(1, 2, 4, 8), v: int = 2) -> list[tuple[str, int, int, int]]:
    """(schedule, p, m, v) for the lesson's table: GPipe and 1F1B everywhere, interleaved
    (v chunks) where its micro-batches come in groups of p (m % p == 0)."""
    cases = []
    for p in ps:
        for m in ms:
            cases += [("gpipe", p, m, 1), ("1f1b", p, m, 1)]
            if m % p == 0:
                cases.append(("interleaved", p, m, v))
    return cases

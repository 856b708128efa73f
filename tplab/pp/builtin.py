"""The built-in: `torch.distributed.pipelining` on the same gloo ranks, beside tplab's executor.

Why it is here. Lesson 05 builds its pipeline from send and recv so every step is visible;
PyTorch ships one (`PipelineStage`, `ScheduleGPipe`, `Schedule1F1B`). Running both on the same
model, ranks and micro-batches shows three things: the same loss and gradients (both equal one
process), the same order of forwards and backwards on every stage, and how their step times
compare.

What torch executes, recorded. `TorchPipeline` wraps its stage's `forward_one_chunk` and
`backward_one_chunk` — the calls the schedule makes once per micro-batch — to record each F and
B with its micro-batch index and start and end times, as tplab `Event`s. That is the order
torch *ran*, which is what tplab's `gpipe`/`one_f_one_b` are compared with. (Module forward
hooks would also see the shape-inference forward torch runs on the first step.) Torch's own
description, `Schedule1F1B.pipeline_order`, is not used: in torch 2.13 it mislabels the last
stage's micro-batches — its warm-up is empty, so its counter starts at 1 and, for p = 4 and
m = 6, rank 3 lists F1..F6 where it runs F0..F5 (the executed order is right).

Set-up that works here (torch 2.13, CPU, gloo): `PipelineStage(submodule, rank, p,
torch.device("cpu"))` with the shapes left for torch to infer on the first step; given
`input_args`/`output_args`, stage 0's backward failed ("Output gradient: None").
`Schedule1F1B` requires m >= p. Its steady phase posts a send and a receive together with
`batch_isend_irecv`, which can hang on gloo (PiPPy #1130, pytorch #132644): run it only inside
`tplab.launch`, whose deadline ends a stuck step with a WorkerError naming the waiting rank.

    pipe = TorchPipeline(stage_module, "1f1b", m, loss_fn)     # on every rank, in launch
    loss = pipe.step(x, y)         # x used on rank 0, y on the last; loss on the last rank
    pipe.order()                   # [F0, F1, B0, ...] as torch ran them on this rank
"""
from __future__ import annotations

import copy
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

from tplab.pp.executor import Event, run_step
from tplab.pp.schedules import Action, schedule
from tplab.pp.workloads import cut, mlp

__all__ = ["TORCH_SCHEDULES", "TorchPipeline", "torch_order_worker", "compare_worker",
           "reference_step"]

TORCH_SCHEDULES = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}


class TorchPipeline:
    """This rank's stage of a `torch.distributed.pipelining` schedule, recording what it runs."""

    def __init__(self, stage_module, name: str, m: int, loss_fn, group=None):
        if name not in TORCH_SCHEDULES:
            raise ValueError(f"torch's single-stage schedules here: {', '.join(TORCH_SCHEDULES)}"
                             f"; not {name!r}")
        self.group, self.m = group, m
        self.rank, self.p = dist.get_rank(group), dist.get_world_size(group)
        self.stage = PipelineStage(stage_module, self.rank, self.p, torch.device("cpu"),
                                   group=group)
        self.schedule = TORCH_SCHEDULES[name](self.stage, n_microbatches=m, loss_fn=loss_fn)
        self.events: list[Event] = []
        self.t0 = time.perf_counter()
        self._record("F", "forward_one_chunk")
        self._record("B", "backward_one_chunk")

    def _record(self, kind: str, method: str) -> None:
        run = getattr(self.stage, method)

        def recorded(chunk_id, *args, **kwargs):
            start = time.perf_counter() - self.t0
            out = run(chunk_id, *args, **kwargs)
            self.events.append(Event(kind, chunk_id, 0, start, time.perf_counter() - self.t0))
            return out
        setattr(self.stage, method, recorded)

    def step(self, x=None, y=None) -> float | None:
        """One training step over the whole batch (`x` on rank 0, targets `y` on the last
        rank; torch cuts them into m micro-batches). Gradients accumulate into the stage's
        `.grad`, averaged over micro-batches. Returns the step's loss on the last rank (the
        mean of the micro-batch losses, as `tplab.pp.run_step`), None elsewhere. Events are
        timed from a barrier, as tplab's."""
        first, last = self.rank == 0, self.rank == self.p - 1
        args = (x,) if first else ()
        kwargs = {"target": y, "losses": []} if last else {}
        dist.barrier(self.group)
        self.events, self.t0 = [], time.perf_counter()
        self.schedule.step(*args, **kwargs)
        if not last:
            return None
        return float(sum(loss.item() for loss in kwargs["losses"]) / self.m)

    def order(self) -> list[Action]:
        """The F and B actions of the last step, in the order torch ran them."""
        return [Action(e.kind, e.micro) for e in self.events]


def _batch(rows: int, dim: int, seed: int):
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randn(rows, dim, generator=g), torch.randn(rows, dim, generator=g)


def torch_order_worker(name: str, m: int, dim: int = 8) -> list[Action]:
    """On each of p ranks: one step of torch's schedule `name` over a small MLP (one block per
    rank); the F/B order this rank's stage ran."""
    p, rank = dist.get_world_size(), dist.get_rank()
    stage = cut(mlp(p, dim), p)[rank]
    x, y = _batch(2 * m, dim, 0)
    pipe = TorchPipeline(stage, name, m, F.mse_loss)
    pipe.step(x, y)
    return pipe.order()


def reference_step(p: int, layers_per_stage: int = 2, dim: int = 32, rows: int = 16,
                   seed: int = 0) -> tuple[float, list[dict]]:
    """One process: the MLP's loss on the whole batch and each stage's parameter gradients
    ({name: grad} per stage, names as in the stage module) — what both pipelines must give."""
    stages = cut(mlp(p * layers_per_stage, dim, seed), p)
    x, y = _batch(rows, dim, seed)
    out = x
    for s in stages:
        out = s(out)
    loss = F.mse_loss(out, y)
    loss.backward()
    return loss.item(), [{k: v.grad.clone() for k, v in s.named_parameters()} for s in stages]


def compare_worker(name: str, m: int, steps: int = 3, layers_per_stage: int = 2,
                   dim: int = 32, rows: int = 16, seed: int = 0) -> dict:
    """On each of p ranks: the same stage of the same MLP, trained with tplab's `run_step`
    and with torch's schedule, alternating step by step (so noise hits both).

    Returns {"tplab": {...}, "torch": {...}} with, for each, "loss" (last rank, first step),
    "grads" ({name: grad} after the first step), "step_s" (one per step, from the barrier to
    this rank's end), "events" (per step) and "order" (the F/B actions of the last step)."""
    p, rank = dist.get_world_size(), dist.get_rank()
    ours = cut(mlp(p * layers_per_stage, dim, seed), p)[rank]
    theirs = copy.deepcopy(ours)
    x, y = _batch(rows, dim, seed)
    first, last = rank == 0, rank == p - 1
    actions = schedule(name, p, m, rank)
    pipe = TorchPipeline(theirs, name, m, F.mse_loss)
    out = {impl: {"loss": None, "grads": None, "step_s": [], "events": []}
           for impl in ("tplab", "torch")}
    for i in range(steps):
        ours.zero_grad()
        step = run_step([ours], actions, list(x.chunk(m)) if first else None,
                        list(y.chunk(m)) if last else None, F.mse_loss, recv_shape=(rows // m, dim))
        out["tplab"]["step_s"].append(time.perf_counter() - step.t0)
        out["tplab"]["events"].append(step.events)
        theirs.zero_grad()
        loss = pipe.step(x, y)
        out["torch"]["step_s"].append(time.perf_counter() - pipe.t0)
        out["torch"]["events"].append(pipe.events)
        if i == 0:
            out["tplab"]["loss"], out["torch"]["loss"] = step.loss, loss
            for impl, module in (("tplab", ours), ("torch", theirs)):
                out[impl]["grads"] = {k: v.grad.clone() for k, v in module.named_parameters()}
    out["tplab"]["order"] = [Action(e.kind, e.micro) for e in step.events
                             if e.kind in ("F", "B")]
    out["torch"]["order"] = pipe.order()
    return out

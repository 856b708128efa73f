"""One executor for every pipeline schedule: it runs a rank's action list, nothing more.

The schedule (`tplab.pp.schedules`) decides *what* runs *when*; this file only does it, so
GPipe, 1F1B and interleaved 1F1B are the same code with different lists. For each action:

* **F** of micro-batch i on virtual stage s: take the input (stage 0) or receive it from the
  rank holding s − 1, run the chunk, then send the output on to s + 1 — or, on the last
  stage, compute that micro-batch's loss. Its activations stay alive until its B.
* **B**: receive the output's gradient from s + 1 (or start from the loss), backpropagate
  through the chunk, send the input's gradient back to s − 1, and free the activations.

Point-to-point rules that keep this deadlock-free on gloo: every send is an `isend`, waited
for at the end of the step, so a rank never blocks on a neighbour that is itself sending;
every receive is blocking, for a message named by a tag (micro-batch, virtual stage,
direction), so messages cannot be mistaken for one another; tensors are contiguous; shapes
are agreed up front (`recv_shape`). `batch_isend_irecv` is not used: on gloo it can hang
(PiPPy #1130, pytorch #132644). A receive that never comes is ended by the launch deadline,
which names the rank waiting in it.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import torch
import torch.distributed as dist

from tplab.checks.forbid import guard  # lesson 05's two-stage check hides it, even held
from tplab.pp.schedules import Action
from tplab.tp.activations import SavedBytes

__all__ = ["run_step", "Step", "Event"]


class Event(NamedTuple):
    """What a rank did, from when to when (seconds since its step began)."""
    kind: str      # "F", "B", "send" or "recv"
    micro: int
    chunk: int
    start: float
    end: float


class Step(NamedTuple):
    loss: float | None          # the step's loss, on the rank holding the last stage
    outputs: list | None        # the last stage's outputs per micro-batch (detached)
    events: list[Event]
    peak_inflight: int          # most micro-batches (x chunks) holding activations at once
    peak_saved_bytes: int       # most bytes saved for backward at once (parameters excluded)
    t0: float                   # this rank's clock (time.perf_counter) when the step began


class _Rank:
    """This rank's place in the pipeline: p ranks, v chunks each, virtual stage = chunk·p + rank."""

    def __init__(self, group, v: int):
        self.group, self.v = group, v
        self.p, self.rank = dist.get_world_size(group), dist.get_rank(group)
        self.last = self.p * v - 1

    def stage(self, chunk: int) -> int:
        return chunk * self.p + self.rank

    def peer(self, stage: int) -> int:
        """The global rank that holds virtual stage `stage`."""
        r = stage % self.p
        return r if self.group is None else dist.get_global_rank(self.group, r)

    def tag(self, micro: int, stage: int, grad: bool) -> int:
        return (micro * (self.last + 1) + stage) * 2 + int(grad)


def run_step(chunks, actions: list[Action], inputs=None, targets=None, loss_fn=None, *,
             recv_shape, group=None, dtype=torch.float32) -> Step:
    """Run this rank's `actions` over its `chunks` for one step; call it on every pipeline rank.

    chunks: the v modules this rank holds (v = 1: `[stage]`); chunk c is virtual stage c·p + rank.
    actions: this rank's schedule (`tplab.pp.schedules`); only "F" actions = inference.
    inputs: the m micro-batches, read on the rank holding stage 0 (None elsewhere).
    targets, loss_fn: read on the rank holding the last stage; the step's loss is
        Σ_i loss_fn(out_i, target_i) / m, so equal micro-batches give the full batch's mean.
        Gradients accumulate into the chunks' parameters (zero them between steps yourself).
    recv_shape: the shape one micro-batch's activation has at every stage boundary, or a
        function of the receiving virtual stage: shapes are agreed up front, never sent.
    Returns a `Step`: the loss and outputs (last stage only), this rank's events, and the
    measured peaks of micro-batches in flight and of bytes saved for backward.
    """
    guard("tplab.pp.executor.run_step")
    where = _Rank(group, len(chunks))
    m = 1 + max(a.micro for a in actions)
    training = any(a.kind == "B" for a in actions)
    shape_of = recv_shape if callable(recv_shape) else (lambda stage: tuple(recv_shape))
    params = [t for c in chunks for t in c.parameters()]
    events, pending, kept, saved = [], [], {}, {}
    losses, outputs = [], []
    live = peak = live_bytes = peak_bytes = 0
    dist.barrier(group)
    t0 = time.perf_counter()

    def clock() -> float:
        return time.perf_counter() - t0

    def timed(kind, a, fn):
        start = clock()
        result = fn()
        events.append(Event(kind, a.micro, a.chunk, start, clock()))
        return result

    def send(tensor, a, stage, grad):
        buffer = tensor.detach().contiguous()        # must stay alive until gloo has sent it
        work = dist.isend(buffer, where.peer(stage), group, where.tag(a.micro, stage, grad))
        pending.append((work, buffer, Event("send", a.micro, a.chunk, clock(), 0.0)))

    def settle(wait: bool = False):
        """Record the sends seen complete (every one, if `wait`) and let their buffers go."""
        still = []
        for work, buffer, event in pending:
            if wait:
                work.wait()
            if wait or work.is_completed():
                events.append(event._replace(end=clock()))  # when seen done: an upper bound
            else:
                still.append((work, buffer, event))
        pending[:] = still

    def recv(shape, a, stage, grad):  # from the neighbour of `stage`; tagged for `stage`
        buffer = torch.empty(shape, dtype=dtype)
        sender = stage + 1 if grad else stage - 1
        dist.recv(buffer, where.peer(sender), group, where.tag(a.micro, stage, grad))
        return buffer

    def forward(a: Action):
        nonlocal live, peak, live_bytes, peak_bytes
        s = where.stage(a.chunk)
        if s == 0:
            x = inputs[a.micro]
        else:
            x = timed("recv", a, lambda: recv(shape_of(s), a, s, False))
            x.requires_grad_(training)
        with SavedBytes(exclude=params) as seen, torch.set_grad_enabled(training):
            y = timed("F", a, lambda: chunks[a.chunk](x))
        if s == where.last:
            outputs.append(y.detach())
            if loss_fn is not None:
                y = loss_fn(y, targets[a.micro]) / m
                losses.append(y.detach())
        else:
            send(y, a, s + 1, False)
        if training:
            kept[a.micro, a.chunk] = (x, y)
            saved[a.micro, a.chunk] = seen.nbytes
            live, live_bytes = live + 1, live_bytes + saved[a.micro, a.chunk]
            peak, peak_bytes = max(peak, live), max(peak_bytes, live_bytes)

    def backward(a: Action):
        nonlocal live, live_bytes
        s = where.stage(a.chunk)
        x, y = kept.pop((a.micro, a.chunk))
        grad = None if s == where.last else timed("recv", a, lambda: recv(y.shape, a, s, True))
        timed("B", a, lambda: torch.autograd.backward(y, grad))
        if s > 0:
            send(x.grad, a, s - 1, True)
        live, live_bytes = live - 1, live_bytes - saved.pop((a.micro, a.chunk))

    for a in actions:
        (forward if a.kind == "F" else backward)(a)
        settle()
    settle(wait=True)
    loss = float(sum(losses)) if losses else None
    return Step(loss, outputs if outputs else None, events, peak, peak_bytes, t0)

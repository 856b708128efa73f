"""Spot-the-bug rank functions, and the harness that runs a learner's fix on real ranks.

Why real ranks: a distributed bug (gradients never combined, a deadlock) is only proven fixed
by running the fix where the bug lives. Each task has a buggy function (shown to the learner),
a fixed one (the model answer), deterministic inputs built on every rank, and a one-process
reference. `check_source` executes the submitted source *inside the ranks* (never in the
grader's process), under `tplab.launch`'s deadline: a fix that still deadlocks ends as a
`WorkerError` after `timeout` seconds and is rejected, not left hanging.

Two tasks port the source article's coding answers to PyTorch: its TensorFlow "data parallel"
(gradients of the *output* with respect to the *input*, per device, never combined) and its
"model parallel" (each half fed the raw input, then a `.gradient` method no module has).
"""
from __future__ import annotations

import dataclasses
import inspect

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ["TASKS", "CheckResult", "check_source", "source", "run_submission"]


# ---- task 1: one data-parallel SGD step (lesson 02 §2) --------------------------------------
def buggy_train_step(model, x, y, lr):
    """One SGD step of data parallelism; x, y: this rank's shard of the global batch."""
    loss = F.mse_loss(model(x), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad          # each rank steps with its own shard's gradient
    return [p.detach() for p in model.parameters()]


def summed_train_step(model, x, y, lr):
    """One SGD step of data parallelism; x, y: this rank's shard of the global batch."""
    loss = F.mse_loss(model(x), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            dist.all_reduce(p.grad)   # summed, not averaged: the step is world times too big
            p -= lr * p.grad
    return [p.detach() for p in model.parameters()]


def fixed_train_step(model, x, y, lr):
    """One SGD step of data parallelism; x, y: this rank's shard of the global batch."""
    loss = F.mse_loss(model(x), y)
    loss.backward()
    world = dist.get_world_size()
    with torch.no_grad():
        for p in model.parameters():
            dist.all_reduce(p.grad)   # sum of the shards' mean gradients ...
            p.grad /= world           # ... over world = the global batch's mean gradient
            p -= lr * p.grad
    return [p.detach() for p in model.parameters()]


# ---- task 2: the article's "data parallel" (coding question 1), ported ----------------------
def buggy_data_parallel_gradients(model, x, y):
    """Every rank returns the gradient of the global batch's mean loss w.r.t. each weight."""
    x = x.clone().requires_grad_()
    output = model(x)                                 # the article: model(input_data[i])
    return [torch.autograd.grad(output.sum(), x)[0]]  # tf.gradients(output, input): per device


def fixed_data_parallel_gradients(model, x, y):
    """Every rank returns the gradient of the global batch's mean loss w.r.t. each weight."""
    loss = F.mse_loss(model(x), y)                    # a loss, not the raw output
    grads = torch.autograd.grad(loss, list(model.parameters()))   # w.r.t. weights, not input
    for g in grads:
        dist.all_reduce(g)                            # combine the devices' gradients
        g /= dist.get_world_size()
    return list(grads)


# ---- task 3: the article's "model parallel" (coding question 2), ported ---------------------
def buggy_model_parallel_gradients(stage, x, y):
    """Rank 0 holds the first layer, rank 1 the second and the loss; each returns the
    gradients of its own layer's weights for the loss of the whole model on (x, y)."""
    output = stage(x)                   # the article: each half fed the raw input
    return stage.gradient(output, x)    # the article: nn.Module has no .gradient


def fixed_model_parallel_gradients(stage, x, y):
    """Rank 0 holds the first layer, rank 1 the second and the loss; each returns the
    gradients of its own layer's weights for the loss of the whole model on (x, y)."""
    if dist.get_rank() == 0:
        hidden = stage(x)
        dist.send(hidden.detach(), dst=1)            # forward: activation to the next stage
        grad_hidden = torch.empty_like(hidden)
        dist.recv(grad_hidden, src=1)                # backward: its gradient comes back
        hidden.backward(grad_hidden)
    else:
        hidden = torch.empty(x.shape[0], stage.in_features)
        dist.recv(hidden, src=0)
        hidden.requires_grad_()
        F.mse_loss(stage(hidden), y).backward()
        dist.send(hidden.grad, dst=0)
    return [p.grad for p in stage.parameters()]


# ---- task 4: a deadlock (lesson 01 §2, lesson 00 §5) ----------------------------------------
def buggy_pass_right(t):
    """Every rank sends t to rank + 1 and returns what rank - 1 sent it (a ring shift)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    got = torch.empty_like(t)
    dist.send(t, dst=(rank + 1) % world)     # every rank blocks here: nobody is receiving
    dist.recv(got, src=(rank - 1) % world)
    return got


def fixed_pass_right(t):
    """Every rank sends t to rank + 1 and returns what rank - 1 sent it (a ring shift)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    got = torch.empty_like(t)
    request = dist.isend(t, dst=(rank + 1) % world)   # start the send, do not wait for it
    dist.recv(got, src=(rank - 1) % world)
    request.wait()
    return got


# ---- inputs and references -----------------------------------------------------------------
def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))


def _batch(n: int = 8):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)


def _stages():
    torch.manual_seed(0)
    return nn.Linear(4, 6), nn.Linear(6, 1)


def _inputs(task: str, rank: int, world: int) -> tuple:
    if task == "pass_right":
        return (torch.full((4,), float(rank)),)
    x, y = _batch()
    if task == "model_parallel_gradients":
        return _stages()[rank], x, y
    xs, ys = x.chunk(world)[rank], y.chunk(world)[rank]
    model = _mlp()
    return (model, xs, ys, 0.1) if task == "train_step" else (model, xs, ys)


def _reference(task: str, rank: int, world: int) -> list:
    if task == "pass_right":
        return [torch.full((4,), float((rank - 1) % world))]
    x, y = _batch()
    if task == "model_parallel_gradients":
        first, second = _stages()
        F.mse_loss(second(first(x)), y).backward()
        return [p.grad for p in (first, second)[rank].parameters()]
    model = _mlp()
    F.mse_loss(model(x), y).backward()
    if task == "data_parallel_gradients":
        return [p.grad for p in model.parameters()]
    with torch.no_grad():
        return [p - 0.1 * p.grad for p in model.parameters()]


TASKS = {"train_step": 2, "data_parallel_gradients": 2, "model_parallel_gradients": 2,
         "pass_right": 2}   # task -> the world size its inputs are built for


def source(name: str) -> str:
    """The source text of one of this module's functions (what a learner reads and edits)."""
    return inspect.getsource(globals()[name])


def _pick(namespace: dict, task: str):
    names = (task, f"fixed_{task}", f"buggy_{task}")
    for name in names:
        if callable(namespace.get(name)):
            return namespace[name]
    defined = [v for v in namespace.values()
               if inspect.isfunction(v) and v.__module__ == "submission"]
    if len(defined) == 1:
        return defined[0]
    raise NameError(f"define a function named {task}() (or keep the name you were given)")


def run_submission(task: str, text: str):
    """On one rank: execute the submitted source, call its function on this rank's inputs."""
    namespace = {"torch": torch, "dist": dist, "nn": nn, "F": F, "__name__": "submission"}
    exec(compile(text, "<submission>", "exec"), namespace)
    out = _pick(namespace, task)(*_inputs(task, dist.get_rank(), dist.get_world_size()))
    out = [out] if isinstance(out, torch.Tensor) else list(out)
    return [t.detach().clone() if isinstance(t, torch.Tensor) else t for t in out]


@dataclasses.dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


def _same(got, want) -> str:
    if len(got) != len(want):
        return f"returned {len(got)} tensors, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if not isinstance(g, torch.Tensor) or g.shape != w.shape:
            shape = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
            return f"result {i}: got {shape}, expected a tensor of shape {tuple(w.shape)}"
        if not torch.allclose(g.float(), w.float(), rtol=1e-5, atol=1e-6):
            return f"result {i} differs from the one-process reference by " \
                   f"{(g.float() - w.float()).abs().max().item():.3g}"
    return ""


def check_source(task: str, text: str, world: int = 2, timeout: float = 10.0) -> CheckResult:
    """Run `text` (a fix of `task`'s buggy function) on `world` ranks within `timeout` seconds
    and compare every rank's result with the one-process reference."""
    from tplab.ranks import WorkerError, launch
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: one of {sorted(TASKS)}")
    try:
        compile(text, "<submission>", "exec")
    except SyntaxError as exc:
        return CheckResult(False, f"syntax error: {exc}")
    try:
        results = launch(run_submission, world, task, text, timeout=timeout)
    except WorkerError as exc:
        return CheckResult(False, str(exc).split("\n")[0])
    for rank, got in enumerate(results):
        problem = _same(got, _reference(task, rank, world))
        if problem:
            return CheckResult(False, f"rank {rank}: {problem}")
    return CheckResult(True, f"all {world} ranks equal the one-process reference")

"""Spot-the-bug rank functions: the bugs a learner is shown, and the bank's model answers.

Why real ranks: a distributed bug (gradients never combined, a deadlock) is only proven fixed
by running the fix where the bug lives. Each task has a buggy function (shown to the learner)
and a fixed one (the model answer); `tplab.interview.verdict.check_source` runs a submission on
gloo ranks (`tplab.interview.harness` is what each rank does), on inputs drawn afresh at every
launch, and compares it with one process (this module re-exports it for the bank's code items).

Two tasks port the source article's coding answers to PyTorch: its TensorFlow "data parallel"
(gradients of the *output* with respect to the *input*, per device, never combined) and its
"model parallel" (each half fed the raw input, then a `.gradient` method no module has).

The model answers (`fixed_*`) call `tplab.checks.forbid.guard` first: while an exercise check
hides one, it raises, whether it is called by name, through a `functools.partial`, or as a copy
executed from its source; and `source()` refuses to print it then.
"""
from __future__ import annotations

import inspect

import torch
import torch.distributed as dist
import torch.nn.functional as F

from tplab.checks.forbid import guard
from tplab.interview.harness import TASKS, WORLDS, labels, reference_forward, run_submission
from tplab.interview.verdict import CheckResult, check_source

__all__ = ["TASKS", "WORLDS", "CheckResult", "check_source", "source", "run_submission",
           "labels", "reference_forward"]


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
    guard("tplab.interview.bugs.fixed_train_step")  # raises while a check hides it
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
    guard("tplab.interview.bugs.fixed_data_parallel_gradients")  # raises while a check hides it
    loss = F.mse_loss(model(x), y)                    # a loss, not the raw output
    grads = torch.autograd.grad(loss, list(model.parameters()))   # w.r.t. weights, not input
    for g in grads:
        dist.all_reduce(g)                            # combine the devices' gradients
        g /= dist.get_world_size()                    # equal shards: mean of means = the mean
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
    guard("tplab.interview.bugs.fixed_model_parallel_gradients")  # raises while a check hides it
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
    guard("tplab.interview.bugs.fixed_pass_right")  # raises while a check hides it
    rank, world = dist.get_rank(), dist.get_world_size()
    got = torch.empty_like(t)
    request = dist.isend(t, dst=(rank + 1) % world)   # start the send, do not wait for it
    dist.recv(got, src=(rank - 1) % world)
    request.wait()
    return got


def source(name: str) -> str:
    """The source text of one of this module's functions (what a learner reads and edits); a
    model answer (`fixed_*`) is refused while an exercise check hides it."""
    if name.startswith("fixed_"):
        guard(f"{__name__}.{name}")
    return inspect.getsource(globals()[name])

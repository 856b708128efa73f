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

A submission is source text (what `tplab interview` reads from a file) or a function (what an
exercise notebook defines): a function runs as it is on forked ranks, with its globals. For the
model-parallel task the harness also records each stage's forward output (a hook), so a fix is
compared with one process on the activations as well as on the gradients.
"""
from __future__ import annotations

import dataclasses
import inspect

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

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
    xs, ys = x.chunk(world)[rank], y.chunk(world)[rank]   # 8 rows: 4+4 on 2 ranks, 3+3+2 on 3
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
WORLDS = {"model_parallel_gradients": (2,)}   # the worlds a task allows (others: any >= 2)


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


def labels(task: str, rank: int) -> list[str]:
    """What each tensor of `task`'s result on `rank` is, for messages."""
    if task == "pass_right":
        return ["the tensor received"]
    if task == "model_parallel_gradients":
        layer = ("first", "second")[rank]
        return [f"the {layer} layer's {n} gradient" for n, _ in _stages()[rank].named_parameters()]
    what = "updated parameter" if task == "train_step" else "gradient of"
    return [f"{what} {n}" for n, _ in _mlp().named_parameters()]


def run_submission(task: str, text) -> dict:
    """On one rank: call the submission (source text, executed here, or a function) on this
    rank's inputs. Returns {"returned": its tensors, "forward": the stage's last forward output
    (model-parallel task; else None)}."""
    if callable(text):
        fn = text
    else:
        namespace = {"torch": torch, "dist": dist, "nn": nn, "F": F, "__name__": "submission"}
        exec(compile(text, "<submission>", "exec"), namespace)
        fn = _pick(namespace, task)
    inputs = _inputs(task, dist.get_rank(), dist.get_world_size())
    seen = []
    if task == "model_parallel_gradients":
        inputs[0].register_forward_hook(lambda module, args, out: seen.append(out.detach()))
    out = fn(*inputs)
    if isinstance(out, torch.Tensor):
        out = [out]
    elif not isinstance(out, (list, tuple)):
        raise TypeError(f"{getattr(fn, '__name__', task)} returned {type(out).__name__}; "
                        f"return a list of tensors")
    out = [t.detach().clone() if isinstance(t, torch.Tensor) else t for t in out]
    return {"returned": out, "forward": seen[-1].clone() if seen else None}


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """ok, why (`message`), and what every rank returned (`results`, when the ranks finished)."""
    ok: bool
    message: str
    results: list | None = None


def _same(got, want, labels=()) -> str:
    if len(got) != len(want):
        return f"returned {len(got)} tensors, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        label = labels[i] if i < len(labels) else f"result {i}"
        if not isinstance(g, torch.Tensor) or g.shape != w.shape:
            shape = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
            return f"{label} (result {i}): got {shape}, expected a tensor of shape " \
                   f"{tuple(w.shape)}"
        if not torch.allclose(g.float(), w.float(), rtol=1e-5, atol=1e-6):
            return f"{label} (result {i}) differs from the one-process reference by " \
                   f"{(g.float() - w.float()).abs().max().item():.3g}"
    return ""


def reference_forward(task: str, rank: int):
    """The stage's output in one process (model-parallel task): first(x), second(first(x))."""
    if task != "model_parallel_gradients":
        return None
    x, _ = _batch()
    first, second = _stages()
    with torch.no_grad():
        hidden = first(x)
        return (hidden, second(hidden))[rank]


def _forward_problem(task: str, rank: int, seen) -> str:
    want = reference_forward(task, rank)
    if want is None:
        return ""
    if seen is None:
        return "its stage never ran forward"
    if seen.shape != want.shape or not torch.allclose(seen, want, rtol=1e-5, atol=1e-6):
        return (f"its stage's forward output differs from the one-process model's (the "
                f"{('first', 'second')[rank]} layer's output on the whole batch): is the "
                f"second layer fed the first layer's activation?")
    return ""


def check_source(task: str, text, world: int = 2, timeout: float = 10.0) -> CheckResult:
    """Run `text` (a fix of `task`'s buggy function: source text or a function) on `world`
    gloo ranks within `timeout` seconds and compare every rank's result (and, for the
    model-parallel task, every stage's forward output) with the one-process reference."""
    from tplab.ranks import WorkerError, launch
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: one of {sorted(TASKS)}")
    if world < 2 or world not in WORLDS.get(task, (world,)):
        raise ValueError(f"task {task!r} runs on {WORLDS.get(task, 'at least 2')} ranks, "
                         f"not {world}")
    if not callable(text):
        try:
            compile(text, "<submission>", "exec")
        except SyntaxError as exc:
            return CheckResult(False, f"syntax error: {exc}")
    try:
        results = launch(run_submission, world, task, text, backend="gloo", timeout=timeout)
    except WorkerError as exc:
        return CheckResult(False, str(exc).split("\n")[0])
    for rank, got in enumerate(results):
        problem = (_same(got["returned"], _reference(task, rank, world), labels(task, rank))
                   or _forward_problem(task, rank, got["forward"]))
        if problem:
            return CheckResult(False, f"rank {rank}: {problem}", results)
    return CheckResult(True, f"all {world} ranks equal the one-process reference", results)

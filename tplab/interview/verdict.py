"""The parent's side of the spot-the-bug harness: launch a submitted fix on real ranks and judge
what they return (`tplab.interview.harness` is the ranks' side: their inputs, the submission's
run, the one-process reference).

Why judge in this order: traffic first (a model-parallel fix that calls all_reduce, or sends
the wrong tensor, is named for that even when its numbers come out right), then what kind of
result came back (how many tensors, their shapes: the article's program returns an input-shaped
tensor, not a gradient per weight, and is named for that first), then the returned
tensors against the one-process reference, then what each model ran forward on (a right
result computed from another rank's rows is still wrong). Data parallelism (`_dp_problem`) is
judged on what it did before its numbers: no message carried the rank's rows, each layer ran
on those rows only, the collectives carried at least the gradients' bytes, and the
gradient autograd computed on a rank is a multiple of its own rows' gradient (a rank that
computes the whole batch's gradient, however it reached the rows, fails).
"""
from __future__ import annotations

import dataclasses
import os

import torch
import torch.nn.functional as F

from tplab.interview.harness import (
    _RECVS,
    _SENDS,
    P2P,
    ROWS,
    TASKS,
    WORLDS,
    _mlp,
    _reference,
    activation_width,
    labels,
    reference_forward,
    run_submission,
    shard_sizes,
)


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """ok, why (`message`), and what every rank returned (`results`, when the ranks finished)."""
    ok: bool
    message: str
    results: list | None = None


def _same(got, want, labels=(), values=True) -> str:
    """What differs between the ranks' results and the reference: their number and shapes, then
    (`values`) their numbers."""
    if len(got) != len(want):
        return f"returned {len(got)} tensors, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        label = labels[i] if i < len(labels) else f"result {i}"
        if not isinstance(g, torch.Tensor) or g.shape != w.shape:
            shape = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
            return f"{label} (result {i}): got {shape}, expected a tensor of shape " \
                   f"{tuple(w.shape)}"
        if values and not torch.allclose(g.float(), w.float(), rtol=1e-5, atol=1e-6):
            return f"{label} (result {i}) differs from the one-process reference by " \
                   f"{(g.float() - w.float()).abs().max().item():.3g}"
    return ""


def _forward_problem(task: str, rank: int, got: dict, kept: list[dict]) -> str:
    if task == "pass_right":
        return ""
    if task != "model_parallel_gradients":
        own = len(kept[rank]["x"])
        if not got["rows_seen"]:
            return "its model never ran forward"
        for n, mine in got["rows_seen"]:
            if not mine:
                return (f"its model ran on {n} rows that are not its own {own}: each replica "
                        f"computes on its shard alone, and the ranks combine gradients, not data")
        return ""
    want = reference_forward(task, rank, kept)
    seen = got["forward"]
    if seen is None:
        return "its stage never ran forward"
    if seen.shape != want.shape or not torch.allclose(seen, want, rtol=1e-5, atol=1e-6):
        return (f"its stage's forward output differs from the one-process model's (the "
                f"{('first', 'second')[rank]} layer's output on the whole batch): is the "
                f"second layer fed the first layer's activation?")
    return ""


def _traffic_problem(task: str, rank: int, got: dict, kept: list[dict]) -> str:
    """Model parallelism: one activation each way; the ring: one tensor each way, waited."""
    if task not in ("model_parallel_gradients", "pass_right"):
        return ""
    calls = got["traffic"]
    other = sorted({c["op"] for c in calls if c["op"] not in P2P})
    if other:
        return (f"it called {', '.join(other)}: this question is about point-to-point "
                f"messages, send/recv (or isend/irecv) only")
    sent = [c for c in calls if c["op"] in _SENDS]
    received = [c for c in calls if c["op"] in _RECVS]
    if task == "pass_right":
        want, what = kept[rank]["t"].nbytes, "the tensor t"
    else:
        rows, width = len(kept[0]["x"]), activation_width(kept)
        want, what = rows * width * 4, f"the activation, ({rows}, {width}) fp32"
    sizes = [[c["nbytes"] for c in sent], [c["nbytes"] for c in received]]
    if sizes != [[want], [want]]:
        return (f"it sent {len(sent)} tensor(s) of {sizes[0]} bytes and received "
                f"{len(received)} of {sizes[1]} bytes; expected one each way of {want} bytes "
                f"({what}{'' if task == 'pass_right' else ' forward, its gradient back'})")
    return ""


_NO_TENSOR = ("barrier", "all_gather_object", "broadcast_object_list")   # carry no tensor bytes


def _own_gradient(rank: int, kept: list[dict]) -> list[torch.Tensor]:
    """The gradient of rank `rank`'s own rows' mean loss, for each weight, in one process."""
    model = _mlp()
    model.load_state_dict(kept[0]["state"])
    loss = F.mse_loss(model(kept[rank]["x"]), kept[rank]["y"])
    return list(torch.autograd.grad(loss, list(model.parameters())))


def _dp_problem(task: str, rank: int, got: dict, kept: list[dict]) -> str:
    """Data parallelism: own rows only, gradients (not data) travel, local gradients own."""
    if task not in ("train_step", "data_parallel_gradients"):
        return ""
    calls = got["traffic"]
    sent = sorted({c["op"] for c in calls if c.get("rows")})
    if sent:
        return (f"its {', '.join(sent)} carried its rows of the batch to the other ranks: data "
                f"parallelism combines gradients, not data; compute on your own rows and "
                f"communicate the gradients")
    problem = _forward_problem(task, rank, got, kept)
    if problem:
        return problem
    grad_bytes = sum(v.numel() * v.element_size() for v in kept[rank]["state"].values())
    carried = sum(c["nbytes"] for c in calls if c["op"] not in _NO_TENSOR)
    if carried < grad_bytes:
        return (f"its collectives carried {carried} B of tensors, fewer than the {grad_bytes} B "
                f"of its gradients: every rank's gradients must travel (e.g. dist.all_reduce "
                f"of each one)")
    pairs = [(g, o) for g, o in zip(got.get("computed") or [], _own_gradient(rank, kept))
             if g is not None]      # weights autograd never reached: nothing to judge
    if not pairs:
        return ""
    local = torch.cat([g.reshape(-1).float() for g, _ in pairs])
    own = torch.cat([o.reshape(-1) for _, o in pairs])
    scale = (local @ own / (own @ own)).item()
    if scale <= 0 or (local - scale * own).norm() > 1e-4 * local.norm() + 1e-7:
        return ("the gradient autograd computed on this rank is not that of its own rows' loss "
                "(nor a multiple of it): each replica differentiates the loss on its shard "
                "alone, and the ranks then combine those gradients")
    return ""


def check_source(task: str, text, world: int = 2, timeout: float = 10.0,
                 rows: int = ROWS) -> CheckResult:
    """Run `text` (a fix of `task`'s buggy function: source text or a function) on `world`
    gloo ranks within `timeout` seconds, on fresh random inputs (`rows` rows in the global
    batch), and compare every rank's result (and its forward outputs and traffic) with one
    process on the same inputs."""
    from tplab.ranks import WorkerError, launch
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: one of {sorted(TASKS)}")
    if world < 2 or world not in WORLDS.get(task, (world,)):
        raise ValueError(f"task {task!r} runs on {WORLDS.get(task, 'at least 2')} ranks, "
                         f"not {world}")
    shard_sizes(rows, world)
    if not callable(text):
        try:
            compile(text, "<submission>", "exec")
        except SyntaxError as exc:
            return CheckResult(False, f"syntax error: {exc}")
    seed = int.from_bytes(os.urandom(8), "little")
    try:
        results = launch(run_submission, world, task, text, seed, rows, backend="gloo",
                         timeout=timeout)
    except WorkerError as exc:
        return CheckResult(False, str(exc).split("\n")[0])
    kept = [got["inputs"] for got in results]
    for rank, got in enumerate(results):
        want, names = _reference(task, rank, kept), labels(task, rank)
        problem = (_traffic_problem(task, rank, got, kept)
                   or _same(got["returned"], want, names, values=False)  # the wrong kind of result
                   or _dp_problem(task, rank, got, kept) or _same(got["returned"], want, names)
                   or _forward_problem(task, rank, got, kept))
        if problem:
            return CheckResult(False, f"rank {rank}: {problem}", results)
    return CheckResult(True, f"all {world} ranks equal the one-process reference", results)

"""Checks of exercise 02.1 (solutions/02_data_parallel.ipynb): a data-parallel training step by
hand, against one process training on the whole batch. (02.2's are in lesson02_buckets.py.)

The notebook's set-up (model, batches, optimizer) travels as a `Setup`, and the learner's
`dp_step` as an argument, so nothing here reaches into a notebook's names. `run_dp_step` runs
on every launched rank; `check_dp_step` raises an AssertionError that names the first thing
wrong and the likely slip. What the learner's code communicates is counted by
`tplab.comm.trace()`, never by replacing torch.distributed's functions.

Own rows, however the model is called: the rows are watched on every leaf layer (the first
must get the rank's slice itself, the others as many rows), so `model.forward(x)` or a loop over
the layers is seen, not only `model(x)`. And the gradient autograd computes on a rank (a hook
on each weight, before any communication) must be a multiple of the gradient of its own slice's
loss, computed beside it at the same parameters: a rank that differentiates the whole batch
(even through F.linear on the weights, out of any hook's sight) fails.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tplab import comm

__all__ = ["Setup", "flat", "one_process_steps", "run_dp_step", "check_dp_step"]


class Setup(NamedTuple):
    """The notebook's set-up cell: the model, the global batch of a step, the optimizer."""
    make_model: Callable[[], nn.Module]
    global_batch: Callable[[int], tuple]
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer]


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# ---- exercise 02.1: dp_step ----------------------------------------------------------------

# the calls that move tensors between ranks (any mix may combine the gradients)
CARRYING = {"all_reduce", "reduce", "broadcast", "all_gather", "all_gather_into_tensor",
            "reduce_scatter", "reduce_scatter_tensor", "all_to_all", "all_to_all_single",
            "gather", "scatter", "send", "recv", "isend", "irecv"}


def one_process_steps(setup: Setup, n: int, steps: int = 4):
    """The reference, step by step: one process on the whole batch; before each step the loss of
    each of the n slices, and the whole batch's gradients. Returns (params, losses, grads)."""
    model = setup.make_model()
    optimizer = setup.make_optimizer(model)
    slice_losses, grads = [], []
    for step in range(steps):
        x, y = setup.global_batch(step)
        with torch.no_grad():
            slice_losses.append([F.mse_loss(model(xs), ys).item()
                                 for xs, ys in zip(x.tensor_split(n), y.tensor_split(n))])
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters()
                      if p.grad is not None})
        optimizer.step()
    return flat(model), slice_losses, grads


def _watch(model: nn.Module, layers: list, computed: dict) -> None:
    """layers[-1]: per forward of a leaf layer, (whether it is the first leaf, its input);
    computed: per weight, the sum of the gradients autograd computed."""
    leaves = [m for m in model.modules() if not list(m.children())]
    for k, leaf in enumerate(leaves):
        leaf.register_forward_pre_hook(
            lambda module, args, kwargs, first=k == 0: layers[-1].append(
                (first, (args or tuple(kwargs.values()) or (None,))[0])), with_kwargs=True)

    def adder(name):
        def add(grad):
            computed[name] = computed.get(name, 0) + grad.detach().clone()
        return add

    for name, p in model.named_parameters():
        if p.requires_grad:
            p.register_hook(adder(name))


def _own_grads(setup: Setup, model: nn.Module, x, y) -> dict:
    """The gradients of this rank's slice's mean loss at `model`'s parameters (a copy)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    copy = setup.make_model()
    copy.load_state_dict(model.state_dict())
    F.mse_loss(copy(x.tensor_split(world)[rank]), y.tensor_split(world)[rank]).backward()
    return {name: p.grad.clone() for name, p in copy.named_parameters() if p.grad is not None}


def run_dp_step(dp_step, setup: Setup, steps: int = 4):
    """On every rank: the learner's dp_step; the parameters at the end, the rows the model's
    first layer saw, and per step the returned loss, the gradients, the communication (a trace
    summary), each leaf layer's inputs, and the gradients autograd computed beside those of the
    rank's slice."""
    model = setup.make_model()
    layers, computed = [], {}
    _watch(model, layers, computed)
    optimizer = setup.make_optimizer(model)
    losses, grads, calls, local = [], [], [], []
    for step in range(steps):
        batch = setup.global_batch(step)
        own = _own_grads(setup, model, *batch)
        layers.append([])
        computed.clear()
        with comm.trace() as t:
            losses.append(dp_step(model, optimizer, *batch))
        calls.append(t.summary())
        grads.append({name: None if p.grad is None else p.grad.clone()
                      for name, p in model.named_parameters()})
        local.append((dict(computed), own))
    seen = [rows for step in layers for first, rows in step if first]
    return flat(model), seen, losses, grads, calls, layers, local


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-5 * abs(b) + 1e-7


def check_dp_step(got, setup: Setup, reference, slice_losses, reference_grads) -> None:
    """Raise AssertionError at the first rank and step whose rows, communication, loss or
    gradients are wrong, or if the replicas differ from each other or from one process."""
    n = len(got)
    grad_bytes = sum(p.numel() * p.element_size() for p in setup.make_model().parameters()
                     if p.requires_grad)
    for r, (params, _, losses, grads, calls, layers, local) in enumerate(got):
        for step in range(4):
            at = f"rank {r} of {n}, step {step}"
            assert any(first for first, _ in layers[step]), (
                f"{at}: the model never ran forward; run it on this rank's slice of the batch")
            for first, rows in layers[step]:
                _check_rows(f"{at}: the model's {'first' if first else 'a'} layer", rows, setup,
                            step, n, r, first)
            _check_local(at, *local[step])
            carried = sum(c["bytes"] for op, c in calls[step].items() if op in CARRYING)
            assert carried >= grad_bytes, (
                f"{at}: your communication ({calls[step] or 'nothing'}) carried {carried} B of "
                f"tensors, fewer than the {grad_bytes} B of gradients: every rank's gradients "
                f"must travel, combined with torch.distributed collectives on tensors (e.g. "
                f"dist.all_reduce each .grad, then divide by the number of ranks); computing the "
                f"whole batch's gradient on every rank skips the exercise")
            _check_loss(at, losses[step], slice_losses[step], r)
            _check_grads(at, grads[step], reference_grads[step], n)
        assert torch.equal(params, got[0][0]), (
            f"{n} ranks: rank {r}'s parameters differ from rank 0's (by up to "
            f"{(params - got[0][0]).abs().max().item():.2e}): step with the same averaged "
            f"gradients on every rank")
    gap = (got[0][0] - reference).abs().max().item()
    assert gap < 1e-6, (f"{n} ranks: parameters differ from one process on the whole batch by "
                        f"{gap:.2e}; step with the averaged gradients")


def _check_rows(what: str, rows, setup: Setup, step: int, n: int, r: int,
                first: bool = True) -> None:
    expected = setup.global_batch(step)[0].tensor_split(n)[r]
    right = isinstance(rows, torch.Tensor) and rows.dim() > 0 and len(rows) == len(expected)
    if right and first:
        right = rows.shape == expected.shape and torch.equal(rows.detach(), expected)
    shape = tuple(rows.shape) if isinstance(rows, torch.Tensor) else type(rows).__name__
    assert right, (f"{what} was given {shape} rows that are not x.tensor_split({n})[{r}], "
                   f"{tuple(expected.shape)}; each rank must run only its own slice of the "
                   f"batch (whichever way it calls the model or its layers)")


def _check_local(at: str, computed: dict, own: dict) -> None:
    """The gradient autograd computed on this rank (before any communication) must be a
    positive multiple of its own slice's gradient, the same multiple for every weight."""
    if not computed:
        return      # the gradients' values are judged after the step (_check_grads)
    names = [name for name in own if name in computed]
    local = torch.cat([computed[name].reshape(-1) for name in names])
    mine = torch.cat([own[name].reshape(-1) for name in names])
    scale = (local @ mine / (mine @ mine)).item()
    assert scale > 0 and (local - scale * mine).norm() <= 1e-4 * local.norm() + 1e-7, (
        f"{at}: the gradient autograd computed on this rank, before any communication, is not "
        f"that of the loss on its own slice of the batch (nor a multiple of it): each rank "
        f"differentiates its own rows' loss, and the ranks combine those gradients")


def _check_loss(at: str, loss, slice_losses: list[float], r: int) -> None:
    assert isinstance(loss, float), (f"{at}: dp_step returned {loss!r}, expected this rank's "
                                     f"loss as a Python float (.item())")
    want, mean = slice_losses[r], sum(slice_losses) / len(slice_losses)
    assert _close(loss, want), (
        f"{at}: dp_step returned {loss:.6f}, expected this rank's loss {want:.6f}" +
        (f": {loss:.6f} is the mean over the ranks; return this rank's own loss"
         if _close(loss, mean) else ": F.mse_loss of the model on this rank's rows, before "
                                    "optimizer.step()"))


def _check_grads(at: str, grads: dict, reference: dict, n: int) -> None:
    assert grads["2.bias"] is None, (f"{at}: the frozen 2.bias has a .grad; leave parameters "
                                     f"that need no gradient alone")
    for name, want in reference.items():
        grad = grads[name]
        assert grad is not None, (f"{at}: {name}.grad is None after dp_step, expected the whole "
                                  f"batch's gradient; leave it in .grad (zero the gradients at "
                                  f"the start of the step)")
        gap = (grad - want).abs().max().item()
        hint = ("it is n times too large: divide the all-reduced sum by the number of ranks"
                if (grad - n * want).abs().max().item() < 1e-5 else
                "every rank's .grad must end as the average over the ranks of the slices' "
                "gradients")
        assert gap < 1e-5, (f"{at}: {name}.grad differs from the whole batch's gradient by up "
                            f"to {gap:.2e} (its first element: {grad.flatten()[0].item():.6f}, "
                            f"expected {want.flatten()[0].item():.6f}); {hint}")


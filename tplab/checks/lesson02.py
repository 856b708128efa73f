"""Checks of exercise 02.1 (solutions/02_data_parallel.ipynb): a data-parallel training step by
hand, against one process training on the whole batch. (02.2's are in lesson02_buckets.py.)

The notebook's set-up (model, batches, optimizer) travels as a `Setup`, and the learner's
`dp_step` as an argument, so nothing here reaches into a notebook's names. `run_dp_step` runs
on every launched rank; `check_dp_step` raises an AssertionError that names the first thing
wrong and the likely slip. What the learner's code communicates is counted by
`tplab.comm.trace()`, never by replacing torch.distributed's functions.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
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


def run_dp_step(dp_step, setup: Setup, steps: int = 4):
    """On every rank: the learner's dp_step; the parameters at the end, the rows the model saw,
    and per step the returned loss, the gradients and the communication (a trace summary)."""
    model = setup.make_model()
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    optimizer = setup.make_optimizer(model)
    losses, grads, calls = [], [], []
    for step in range(steps):
        with comm.trace() as t:
            losses.append(dp_step(model, optimizer, *setup.global_batch(step)))
        calls.append(t.summary())
        grads.append({name: None if p.grad is None else p.grad.clone()
                      for name, p in model.named_parameters()})
    return flat(model), seen, losses, grads, calls


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-5 * abs(b) + 1e-7


def check_dp_step(got, setup: Setup, reference, slice_losses, reference_grads) -> None:
    """Raise AssertionError at the first rank and step whose rows, communication, loss or
    gradients are wrong, or if the replicas differ from each other or from one process."""
    n = len(got)
    grad_bytes = sum(p.numel() * p.element_size() for p in setup.make_model().parameters()
                     if p.requires_grad)
    for r, (params, seen, losses, grads, calls) in enumerate(got):
        assert len(seen) == 4, (f"rank {r} of {n}: the model ran {len(seen)} forward passes in 4 "
                                f"steps, expected 4 (one per step)")
        for step, rows in enumerate(seen):
            expected = setup.global_batch(step)[0].tensor_split(n)[r]
            assert rows.shape == expected.shape and torch.equal(rows, expected), (
                f"rank {r} of {n}, step {step}: the model was given {tuple(rows.shape)} rows that "
                f"are not x.tensor_split({n})[{r}], {tuple(expected.shape)}; each rank must run "
                f"only its own slice of the batch")
        for step in range(4):
            at = f"rank {r} of {n}, step {step}"
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


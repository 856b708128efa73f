"""Checks of exercise 02.3 (solutions/02_data_parallel.ipynb): gradient accumulation on PyTorch
DDP, with `no_sync()` for the first k-1 micro-batches, equal to one process on the whole batch.

How DDP's all-reduces are counted: DDP's reducer all-reduces its buckets from C++, past
torch.distributed's Python functions, so `tplab.comm.trace()` cannot see them. What the reducer
does call, once per bucket it synchronises, is a *communication hook* (`register_comm_hook`, the
documented way to change how DDP communicates). The check registers one that counts the call and
then does DDP's default (`default_hooks.allreduce_hook`: divide by the world size, all-reduce),
inside `hooks.quiet()`, so the tracer sees only the calls the learner makes. A calibration model
gives the number of bucket all-reduces of one ordinary backward ("one sync"); every optimizer step
must cost exactly that many.

How the passes are seen: a forward pre-hook on the DDP module (a forward through `ddp_model`), one
on the wrapped model (the rows it ran) and a post-accumulate-grad hook on the first trainable
parameter (it fires once per backward that reaches it, however many forwards that backward spans)
write one event list. Accumulation is then "through DDP, forward, backward" k times in a row: one
micro-batch's activations alive at a time, and DDP's forward-time bookkeeping done for every
micro-batch.

`run_accumulate` runs on every launched rank with the learner's `accumulate_step` passed in;
`check_accumulate` raises an AssertionError naming the first thing wrong and the likely slip.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

from tplab import comm
from tplab.checks.lesson02 import CARRYING, Setup, flat
from tplab.comm import hooks

__all__ = ["counting_hook", "run_accumulate", "check_accumulate", "syncs_per_step"]

STEPS = 2


def counting_hook(state: dict, bucket):
    """A DDP communication hook: count this bucket's sync, then do what DDP does by default."""
    state["syncs"] += 1
    with hooks.quiet():  # DDP's own all-reduce: not the learner's call
        return allreduce_hook(None, bucket)


def _ddp(model: nn.Module) -> tuple[nn.parallel.DistributedDataParallel, dict]:
    ddp = nn.parallel.DistributedDataParallel(model)
    state = {"syncs": 0}
    ddp.register_comm_hook(state, counting_hook)
    return ddp, state


def _one_sync(setup: Setup) -> int:
    """Bucket all-reduces of one ordinary forward and backward of the set-up's model under DDP."""
    rank, world = dist.get_rank(), dist.get_world_size()
    ddp, state = _ddp(setup.make_model())
    x, y = setup.global_batch(0)
    F.mse_loss(ddp(x.tensor_split(world)[rank]), y.tensor_split(world)[rank]).backward()
    return state["syncs"]


def _record_passes(ddp: nn.Module, model: nn.Module, events: list) -> None:
    """Append ("ddp",) for each forward through the DDP module, ("forward", rows) for each forward
    of the wrapped model and ("backward",) for each backward reaching its first trainable
    parameter."""
    ddp.register_forward_pre_hook(lambda module, args: events.append(("ddp",)))
    model.register_forward_pre_hook(
        lambda module, args: events.append(("forward", args[0].detach().clone())))
    first = next(p for p in model.parameters() if p.requires_grad)
    first.register_post_accumulate_grad_hook(lambda p: events.append(("backward",)))


def run_accumulate(accumulate_step, setup: Setup, ks, steps: int = STEPS) -> list[dict]:
    """On every rank, for each k: the learner's accumulate_step on a fresh DDP replica for
    `steps` steps; per step the passes in order (through DDP, forward with its rows, backward),
    DDP's bucket syncs, optimizer steps, the learner's own communication and the gradients; the
    parameters at the end."""
    one_sync = _one_sync(setup)
    out = []
    for k in ks:
        model = setup.make_model()
        ddp, state = _ddp(model)
        seen, stepped = [], [0]
        _record_passes(ddp, model, seen)
        optimizer = setup.make_optimizer(ddp)
        optimizer.register_step_post_hook(lambda *_: stepped.__setitem__(0, stepped[0] + 1))
        log = []
        for step in range(steps):
            x, y = setup.global_batch(step)
            seen.clear()
            state["syncs"], stepped[0] = 0, 0
            with comm.trace() as t:
                accumulate_step(ddp, optimizer, x, y, k)
            log.append({"passes": list(seen), "syncs": state["syncs"], "steps": stepped[0],
                        "own": {op: c for op, c in t.summary().items() if op in CARRYING},
                        "grads": {name: None if p.grad is None else p.grad.clone()
                                  for name, p in model.named_parameters()}})
        out.append({"k": k, "one_sync": one_sync, "log": log, "params": flat(model)})
    return out


def syncs_per_step(got: list) -> list[int]:
    """Rank 0's DDP bucket all-reduces in the first step of each case (for the picture)."""
    return [case["log"][0]["syncs"] for case in got[0]]


def _passes_problem(at: str, passes: list, k: int) -> str | None:
    """None if the step ran k times: a forward through the DDP module, then its backward."""
    kinds = [event[0] for event in passes]
    forwards, backwards = kinds.count("forward"), kinds.count("backward")
    if forwards != k:
        return None  # _rows_problem names it
    if kinds.count("ddp") < forwards:
        return (f"{at}: {forwards - kinds.count('ddp')} of the {k} forward passes bypassed "
                f"ddp_model (ddp_model.module called directly?): DDP prepares the coming "
                f"backward's sync in its own forward, so run every micro-batch through ddp_model "
                f"and switch the early syncs off with `with ddp_model.no_sync():`")
    if backwards == 1 and k > 1:
        return (f"{at}: {k} forward passes but one backward: one backward of the summed losses "
                f"keeps every micro-batch's activations alive at once, which is what "
                f"accumulation avoids; call backward on each micro-batch's loss right after its "
                f"forward, and let .grad add them up")
    if backwards != k:
        return (f"{at}: {backwards} backward passes for {k} micro-batches, expected one each, "
                f"right after its forward")
    if kinds != ["ddp", "forward", "backward"] * k:
        return (f"{at}: the passes ran in the order {' '.join(kinds)}, expected each micro-batch's "
                f"backward before the next one's forward (ddp forward backward, k times): "
                f"running all forwards first keeps every micro-batch's activations alive at once")
    return None


def _rows_problem(at: str, rows: list, mine: torch.Tensor, k: int) -> str | None:
    if len(rows) != k:
        return (f"{at}: the model ran {len(rows)} forward pass(es), expected k = {k}: one per "
                f"micro-batch")
    if any(len(r) == 0 for r in rows):
        return f"{at}: a micro-batch was empty ({[len(r) for r in rows]} rows)"
    ran = torch.cat(rows)
    if ran.shape != mine.shape:
        return (f"{at}: the micro-batches held {[len(r) for r in rows]} rows, {len(ran)} in all, "
                f"but this rank's slice x.tensor_split(n)[rank] has {len(mine)}: every row of the "
                f"slice exactly once (a row dropped or repeated at a micro-batch's edge? "
                f"slice.tensor_split(k) never drops one)")
    order_ran, order_mine = ran[:, 0].argsort(), mine[:, 0].argsort()
    if not torch.equal(ran[order_ran], mine[order_mine]):
        return (f"{at}: the micro-batches are not the rows of this rank's slice "
                f"x.tensor_split(n)[rank], each once: take your slice, then split it into k")
    return None


def _syncs_problem(at: str, syncs: int, one: int, k: int) -> str | None:
    if syncs == one:
        return None
    if syncs == 0:
        return (f"{at}: DDP never all-reduced the gradients: the last micro-batch's forward and "
                f"backward must run outside no_sync(), so that its backward syncs the total")
    if syncs == k * one:
        return (f"{at}: DDP all-reduced after every one of the {k} micro-batches ({syncs} bucket "
                f"all-reduces; one sync is {one}): run the forward *and* backward of the first k-1 "
                f"inside `with ddp_model.no_sync():` (DDP decides in forward whether the coming "
                f"backward syncs)")
    return (f"{at}: {syncs} bucket all-reduces in one optimizer step, expected one sync ({one}): "
            f"no_sync() for the first k-1 micro-batches, forward and backward, and not for the "
            f"last")


def _ranks_problem(at: str, grads_per_rank: list[dict]) -> str | None:
    """The ranks' gradients after one step must agree: DDP's sync leaves the same average on all."""
    for name, first in grads_per_rank[0].items():
        for r, grads in enumerate(grads_per_rank[1:], start=1):
            other = grads[name]
            if first is None or other is None:
                continue  # _grads_problem names a missing gradient
            gap = (other - first).abs().max().item()
            if gap > 1e-6:
                return (f"{at}: {name}.grad differs between rank 0 and rank {r} by up to "
                        f"{gap:.2e}, so part of it was never all-reduced: the one backward that "
                        f"syncs must be the *last*, after the others have accumulated into .grad "
                        f"(no_sync() for micro-batches 0 .. k-2, not 1 .. k-1)")
    return None


def _grads_problem(at: str, grads: dict, reference: dict, k: int, n: int) -> str | None:
    for name, want in reference.items():
        grad = grads[name]
        if grad is None:
            return (f"{at}: {name}.grad is None after accumulate_step, expected the whole batch's "
                    f"gradient (zero the gradients at the start of the step, not the end)")
        gap = (grad - want).abs().max().item()
        if gap < 1e-5:
            continue
        if (grad - k * want).abs().max().item() < 1e-5:
            hint = (f"it is k = {k} times too large: scale each micro-batch's loss so the k "
                    f"backward passes add up to the mean over the slice")
        elif (grad - want / n).abs().max().item() < 1e-5:
            hint = (f"it is n = {n} times too small: DDP already averages over the ranks, so do "
                    f"not divide by the world size yourself")
        else:
            hint = ("weight each micro-batch's mean loss by its share of the slice's rows "
                    "(len(micro-batch) / len(slice)), which is 1/k only when the micro-batches "
                    "are equal; zero the gradients once, at the start of the step")
        return (f"{at}: {name}.grad differs from the whole batch's gradient by up to {gap:.2e}; "
                f"{hint}")
    return None


def check_accumulate(got: list, setup: Setup, reference: torch.Tensor, reference_grads: list):
    """Raise AssertionError at the first rank, k and step that is wrong; then the replicas must be
    equal to each other and to one process on the whole batch (`lesson02.one_process_steps`)."""
    n = len(got)
    for c, case in enumerate(got[0]):
        k = case["k"]
        for r, cases in enumerate(got):
            for step, entry in enumerate(cases[c]["log"]):
                at = f"rank {r} of {n}, k = {k}, step {step}"
                mine = setup.global_batch(step)[0].tensor_split(n)[r]
                rows = [event[1] for event in entry["passes"] if event[0] == "forward"]
                problem = (_rows_problem(at, rows, mine, k) or
                           _passes_problem(at, entry["passes"], k) or
                           _syncs_problem(at, entry["syncs"], cases[c]["one_sync"], k))
                assert problem is None, problem
                assert entry["steps"] == 1, (
                    f"{at}: the optimizer stepped {entry['steps']} times, expected once per call, "
                    f"after the last micro-batch")
                assert not entry["own"], (
                    f"{at}: you communicated yourself ({entry['own']}): DDP all-reduces the "
                    f"gradients in the last backward; do not all-reduce them again")
                problem = (_ranks_problem(at, [cs[c]["log"][step]["grads"] for cs in got]) or
                           _grads_problem(at, entry["grads"], reference_grads[step], k, n))
                assert problem is None, problem
            params = cases[c]["params"]
            assert torch.equal(params, got[0][c]["params"]), (
                f"k = {k}: rank {r}'s parameters differ from rank 0's by up to "
                f"{(params - got[0][c]['params']).abs().max().item():.2e}")
        gap = (got[0][c]["params"] - reference).abs().max().item()
        assert gap < 1e-6, (f"{n} ranks, k = {k}: parameters differ from one process on the whole "
                            f"batch by {gap:.2e}")

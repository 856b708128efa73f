"""Checks of exercise 07.2 (solutions/07_putting_it_together.ipynb): one ZeRO-1 step, written
out: reduce-scatter the gradients (averaged), AdamW on this rank's shard only, all-gather.

Why three separate checks in one launch: each catches what the others cannot.
* **Numbers.** On 2 ranks, P = 37 parameters (odd: the last shard is padded), each rank's own
  gradient per step; after 3 steps (the learning rate changed after the first, as a scheduler
  would) every rank's parameters must equal one-process `torch.optim.AdamW` fed the ranks'
  *average* gradient, within 1e-6. AdamW's eps is 0.1, large beside the gradients: with the
  usual 1e-8 Adam's step hardly depends on the gradient's scale, and sums would pass. Sums
  instead of averages, a forgotten all-gather, a shard off by one: all give other numbers.
* **Memory.** Plain data parallelism (all-reduce, then AdamW on every element, on every rank)
  gives the *same* numbers, and saves nothing: so each rank's optimizer must hold state for
  its ceil(P/N) elements only (exp_avg and exp_avg_sq: 2·ceil(P/N) numbers, counted with
  `tplab.zero.optimizer_state_bytes`'s rule: every tensor in the optimizer's `state`).
* **Traffic.** Per step exactly one reduce-scatter handing in the padded gradient,
  N·ceil(P/N) fp32 values, and one all-gather of this rank's ceil(P/N); no all-reduce (traced
  with `tplab.comm.trace`, which sees direct torch.distributed calls and tplab.comm's).
`tplab.zero.ShardedOptimizer` (the library's answer) is switched off while the learner's code
runs.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist

from tplab import comm
from tplab.checks.forbid import forbidden
from tplab.ranks.launcher import launch
from tplab.zero import ShardedOptimizer, optimizer_state_bytes

__all__ = ["P", "WORLD", "STEPS", "ADAMW", "LATER_LR", "initial_params", "rank_grad",
           "reference_params", "check_zero1"]

P, WORLD, STEPS = 37, 2, 3
# eps large beside the gradients (of order 1): Adam's step m/(sqrt(v) + eps) is otherwise blind
# to the gradient's scale, and a sum over the ranks would pass for their average
ADAMW = dict(lr=0.05, betas=(0.9, 0.99), eps=0.1, weight_decay=0.1)
LATER_LR = 0.02   # set on optimizer.param_groups[0]["lr"] after the first step
RS_OPS = ("reduce_scatter", "reduce_scatter_tensor", "reduce_scatter_single")
AG_OPS = ("all_gather", "all_gather_into_tensor", "all_gather_single")
_NOT_YOURS = ("your ZeRO-1 used tplab.zero.ShardedOptimizer, the answer this exercise asks you "
              "to write: shard, reduce-scatter and all-gather yourself")


def initial_params() -> torch.Tensor:
    """The flat parameters every rank starts from (the same on all)."""
    return torch.randn(P, generator=torch.Generator().manual_seed(7))


def rank_grad(step: int, rank: int) -> torch.Tensor:
    """Rank `rank`'s gradient at `step`: what its backward on its own data would give."""
    return torch.randn(P, generator=torch.Generator().manual_seed(1000 * step + rank)) * (rank + 1)


def reference_params(world: int = WORLD) -> list[torch.Tensor]:
    """One process, torch.optim.AdamW, the ranks' average gradient: the parameters after each
    step."""
    flat = torch.nn.Parameter(initial_params())
    optimizer = torch.optim.AdamW([flat], **ADAMW)
    out = []
    for step in range(STEPS):
        flat.grad = sum(rank_grad(step, r) for r in range(world)) / world
        optimizer.step()
        if step == 0:
            optimizer.param_groups[0]["lr"] = LATER_LR
        out.append(flat.detach().clone())
    return out


def _state_numbers(optimizer) -> int:
    """Numbers in the optimizer's state beyond one scalar per tensor (the step counters)."""
    return sum(t.numel() for per_param in optimizer.state.values() for t in per_param.values()
               if isinstance(t, torch.Tensor) and t.numel() > 1)


def _on_rank(zero_cls):
    rank = dist.get_rank()
    flat = initial_params()
    zero = zero_cls(flat, **ADAMW)
    optimizer = getattr(zero, "optimizer", None)
    after, traffic = [], []
    for step in range(STEPS):
        with comm.trace() as traced:
            zero.step(rank_grad(step, rank))
        traffic.append(traced.summary())
        if step == 0 and isinstance(optimizer, torch.optim.Optimizer):
            optimizer.param_groups[0]["lr"] = LATER_LR
        after.append(flat.detach().clone())
    is_optim = isinstance(optimizer, torch.optim.Optimizer)
    return {"after": after, "traffic": traffic, "has_optimizer": is_optim,
            "state_numbers": _state_numbers(optimizer) if is_optim else None,
            "state_bytes": optimizer_state_bytes(optimizer) if is_optim else None}


def _traffic_problem(traffic, shard) -> str | None:
    for step, summary in enumerate(traffic):
        ops = {op: v for op, v in summary.items() if op != "wait"}
        rs = {op: v for op, v in ops.items() if op in RS_OPS}
        ag = {op: v for op, v in ops.items() if op in AG_OPS}
        other = {op: v for op, v in ops.items() if op not in RS_OPS + AG_OPS}
        if other:
            return (f"step {step} also made {other}: a ZeRO-1 step needs one reduce-scatter "
                    f"and one all-gather, no all-reduce (that is plain data parallelism)")
        rs_calls = sum(v["calls"] for v in rs.values())
        ag_calls = sum(v["calls"] for v in ag.values())
        if rs_calls != 1 or ag_calls != 1:
            return (f"step {step} made {rs_calls} reduce-scatter(s) and {ag_calls} all-gather(s);"
                    f" expected exactly one of each" + (": did you forget the all-gather?"
                                                         if ag_calls == 0 else ""))
        rs_bytes = sum(v["bytes"] for v in rs.values())
        ag_bytes = sum(v["bytes"] for v in ag.values())
        if (rs_bytes, ag_bytes) != (4 * shard * WORLD, 4 * shard):
            return (f"step {step}: the reduce-scatter handed in {rs_bytes} B and the all-gather "
                    f"{ag_bytes} B; expected the padded gradient, {WORLD}·{shard} fp32 = "
                    f"{4 * shard * WORLD} B, and one shard, {4 * shard} B (shards of "
                    f"ceil(P/N) = {shard}, the last padded)")
    return None


def check_zero1(zero_cls, namespace) -> dict:
    """Run `zero_cls(flat, **ADAMW)` and its `.step(flat_grad)` on WORLD ranks for STEPS steps
    (ShardedOptimizer switched off) and require: parameters equal to one-process AdamW, this
    rank's optimizer (`.optimizer`) holding 2·ceil(P/N) numbers of state, one reduce-scatter
    and one all-gather per step with exact bytes. Returns the ranks' results and the
    reference."""
    with forbidden(namespace, {ShardedOptimizer: _NOT_YOURS}):
        results = launch(_on_rank, WORLD, zero_cls, timeout=60)
    want = reference_params()
    shard = math.ceil(P / WORLD)
    for rank, got in enumerate(results):
        for step in range(STEPS):
            error = (got["after"][step] - want[step]).abs()
            if error.max() > 1e-6:
                where = torch.nonzero(error > 1e-6).flatten().tolist()
                mine = [i for i in where if rank * shard <= i < (rank + 1) * shard]
                raise AssertionError(
                    f"rank {rank}, after step {step + 1}: parameters differ from one-process "
                    f"AdamW on the average gradient (max error {error.max():.2e}) at indices "
                    f"{where[:12]}{' ...' if len(where) > 12 else ''}"
                    + (" (none in this rank's shard: are the other shards gathered back?)"
                       if not mine else "") + f"; this rank's shard is {rank * shard}.."
                    f"{min(P, (rank + 1) * shard) - 1} of {P}")
    for rank, got in enumerate(results):
        assert got["has_optimizer"], (
            "your class should keep its torch optimizer as `self.optimizer` (the check counts "
            "its state)")
        assert got["state_numbers"] <= 2 * shard, (
            f"rank {rank}'s optimizer holds {got['state_numbers']} numbers of state; ZeRO-1 "
            f"keeps 2 per element of its shard only, 2·{shard} = {2 * shard}. The parameters "
            f"can come out right while each rank keeps the whole model's optimizer state: "
            f"that saves no memory (plain data parallelism, not ZeRO)")
        problem = _traffic_problem(got["traffic"], shard)
        assert problem is None, f"rank {rank}: {problem}"
    return {"results": results, "reference": want, "shard": shard}

"""Checks of exercise 07.2 (solutions/07_putting_it_together.ipynb): one ZeRO-1 step, written
out: reduce-scatter the gradients (averaged), AdamW on this rank's shard only, all-gather.

Why three separate checks in one launch: each catches what the others cannot.
* **Numbers.** On 3 ranks, then on 4 (a launch each), two models per launch: P = 37 parameters
  (the last shard padded) and P = 36 (divisible: ceil(36/3) = 12 and ceil(36/4) = 9, where
  floor(P/N) + 1 is wrong), each rank's own gradient per step; after 3 steps (the learning rate
  changed after the first, as a scheduler would) every rank's parameters must equal one-process
  `torch.optim.AdamW` fed the ranks' *average* gradient, within 1e-6. Two world sizes, neither
  2: dividing by 2, a world size typed in, or a shard size copied from an example gives other
  numbers in one of them. AdamW's eps is 0.1, large beside the
  gradients: with the usual 1e-8 Adam's step hardly depends on the gradient's scale, and sums
  would pass. Sums instead of averages, a forgotten all-gather, a shard off by one: all give
  other numbers.
* **Memory.** Plain data parallelism (all-reduce, then AdamW on every element, on every rank)
  gives the *same* numbers, and saves nothing: so `self.optimizer` must hold the state of its
  shard, 2·ceil(P/N) numbers (it does the update), the optimizer state of EVERY
  `torch.optim.Optimizer` the object holds (in its attributes, lists, dicts, one level of
  nesting) must come to 2·ceil(P/N) numbers at most (exp_avg and exp_avg_sq of its shard), and
  every tensor it holds between steps (parameters, buffers, shard, state) must stay within
  P + N·ceil(P/N) + 4·ceil(P/N) numbers (the parameters, one padded buffer, the shard, its
  gradient and its state) plus 64 B of scalars: a whole-model momentum kept by hand does not
  fit.
* **Traffic.** Per step exactly one reduce-scatter handing in the padded gradient,
  N·ceil(P/N) fp32 values, and one all-gather of this rank's ceil(P/N); no all-reduce (traced
  with `tplab.comm.trace`, which sees direct torch.distributed calls and tplab.comm's).
`tplab.zero.ShardedOptimizer` (the library's answer) is switched off while the learner's code
runs. The launch is on gloo (CPU tensors) whatever GPUs the machine has.
"""
from __future__ import annotations

import math
import types

import torch
import torch.distributed as dist

from tplab import comm
from tplab.checks.forbid import forbidden
from tplab.ranks.errors import WorkerError
from tplab.ranks.launcher import launch
from tplab.zero import ShardedOptimizer, optimizer_state_bytes

__all__ = ["P", "SIZES", "WORLD", "WORLDS", "STEPS", "ADAMW", "LATER_LR", "initial_params",
           "rank_grad", "reference_params", "held", "check_zero1"]

P, WORLD, STEPS = 37, 3, 3
WORLDS = (WORLD, 4)       # one launch each: a world size typed in fails the other
SIZES = (37, 36)          # the models of one launch: padded (37 = 3·13 - 2), divisible (36 = 3·12)
# eps large beside the gradients (of order 1): Adam's step m/(sqrt(v) + eps) is otherwise blind
# to the gradient's scale, and a sum over the ranks would pass for their average
ADAMW = dict(lr=0.05, betas=(0.9, 0.99), eps=0.1, weight_decay=0.1)
LATER_LR = 0.02   # set on optimizer.param_groups[0]["lr"] after the first step
SCALAR_ALLOWANCE = 64   # bytes: step counters and other scalars
RS_OPS = ("reduce_scatter", "reduce_scatter_tensor", "reduce_scatter_single")
AG_OPS = ("all_gather", "all_gather_into_tensor", "all_gather_single")
_NOT_YOURS = ("your ZeRO-1 used tplab.zero.ShardedOptimizer, the answer this exercise asks you "
              "to write: shard, reduce-scatter and all-gather yourself")


def initial_params(p: int = P) -> torch.Tensor:
    """The flat parameters every rank starts from (the same on all)."""
    return torch.randn(p, generator=torch.Generator().manual_seed(7 + p))


def rank_grad(step: int, rank: int, p: int = P) -> torch.Tensor:
    """Rank `rank`'s gradient at `step`: what its backward on its own data would give."""
    seed = 1000 * step + rank + 100_000 * p
    return torch.randn(p, generator=torch.Generator().manual_seed(seed)) * (rank + 1)


def reference_params(world: int = WORLD, p: int = P) -> list[torch.Tensor]:
    """One process, torch.optim.AdamW, the ranks' average gradient: the parameters after each
    step."""
    flat = torch.nn.Parameter(initial_params(p))
    optimizer = torch.optim.AdamW([flat], **ADAMW)
    out = []
    for step in range(STEPS):
        flat.grad = sum(rank_grad(step, r, p) for r in range(world)) / world
        optimizer.step()
        if step == 0:
            optimizer.param_groups[0]["lr"] = LATER_LR
        out.append(flat.detach().clone())
    return out


def held(obj, depth: int = 3) -> tuple[list, list]:
    """(tensors, optimizers) reachable from `obj`: its attributes, the items of its lists,
    tuples, sets and dicts, the attributes of objects it holds (one level of nesting and their
    containers), a module's parameters and buffers, an optimizer's parameters and state."""
    tensors, optimizers, seen = [], [], set()

    def visit(x, left):
        if id(x) in seen or left < 0:
            return
        seen.add(id(x))
        if isinstance(x, torch.Tensor):
            tensors.append(x)
            if x.grad is not None:
                tensors.append(x.grad)
        elif isinstance(x, torch.optim.Optimizer):
            optimizers.append(x)
            for group in x.param_groups:
                visit(group["params"], left)
            visit(list(x.state.values()), left)
        elif isinstance(x, torch.nn.Module):
            for t in list(x.parameters()) + list(x.buffers()):
                visit(t, left)
        elif isinstance(x, dict):
            for v in list(x.values()):
                visit(v, left - 1)
        elif isinstance(x, (list, tuple, set, frozenset)):
            for v in list(x):
                visit(v, left - 1)
        elif hasattr(x, "__dict__") and not isinstance(x, (type, types.ModuleType,
                                                          types.FunctionType)):
            for v in list(vars(x).values()):
                visit(v, left - 1)

    visit(obj, depth)
    return tensors, optimizers


def _storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind `tensors` (views of one buffer count once)."""
    storages = {}
    for t in tensors:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = max(storages.get(storage.data_ptr(), 0), storage.nbytes())
    return sum(storages.values())


def _state_numbers(optimizer) -> int:
    """Numbers in the optimizer's state beyond one scalar per tensor (the step counters)."""
    return sum(t.numel() for per_param in optimizer.state.values() for t in per_param.values()
               if isinstance(t, torch.Tensor) and t.numel() > 1)


def _one_model(zero_cls, p: int) -> dict:
    rank = dist.get_rank()
    flat = initial_params(p)
    zero = zero_cls(flat, **ADAMW)
    optimizer = getattr(zero, "optimizer", None)
    after, traffic = [], []
    for step in range(STEPS):
        with comm.trace() as traced:
            zero.step(rank_grad(step, rank, p))
        traffic.append(traced.summary())
        if step == 0 and isinstance(optimizer, torch.optim.Optimizer):
            optimizer.param_groups[0]["lr"] = LATER_LR
        after.append(flat.detach().clone())
    is_optim = isinstance(optimizer, torch.optim.Optimizer)
    tensors, optimizers = held(zero)
    return {"P": p, "after": after, "traffic": traffic, "has_optimizer": is_optim,
            "optimizers": len(optimizers),
            "state_numbers": sum(_state_numbers(o) for o in optimizers),
            "own_state_numbers": _state_numbers(optimizer) if is_optim else None,
            "state_bytes": optimizer_state_bytes(optimizer) if is_optim else None,
            "held_bytes": _storage_bytes(tensors + [flat])}


def _on_rank(zero_cls):
    return [_one_model(zero_cls, p) for p in SIZES]


def _traffic_problem(traffic, shard, world) -> str | None:
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
        if (rs_bytes, ag_bytes) != (4 * shard * world, 4 * shard):
            return (f"step {step}: the reduce-scatter handed in {rs_bytes} B and the all-gather "
                    f"{ag_bytes} B; expected the padded gradient, {world}·{shard} fp32 = "
                    f"{4 * shard * world} B, and one shard, {4 * shard} B (shards of "
                    f"ceil(P/N) = {shard}, the last padded when N does not divide P)")
    return None


def _numbers_problem(got, want, rank, p, shard, world) -> str | None:
    for step in range(STEPS):
        error = (got["after"][step] - want[step]).abs()
        if error.max() > 1e-6:
            where = torch.nonzero(error > 1e-6).flatten().tolist()
            mine = [i for i in where if rank * shard <= i < (rank + 1) * shard]
            return (f"P = {p} on {world} ranks, rank {rank}, after step {step + 1}: parameters "
                    f"differ from one-process AdamW on the average gradient (max error "
                    f"{error.max():.2e}) at indices {where[:12]}{' ...' if len(where) > 12 else ''}"
                    + (" (none in this rank's shard: are the other shards gathered back?)"
                       if not mine else "") + f"; this rank's shard is {rank * shard}.."
                    f"{min(p, (rank + 1) * shard) - 1} of {p} (ceil(P/N) = {shard})")
    return None


def _memory_problem(got, rank, p, shard, world) -> str | None:
    where = f"P = {p} on {world} ranks, rank {rank}"
    if not got["has_optimizer"]:
        return ("your class should keep its torch optimizer as `self.optimizer` (the check "
                "counts its state)")
    if got["state_numbers"] > 2 * shard:
        return (f"{where}: the {got['optimizers']} torch optimizer(s) your object holds keep "
                f"{got['state_numbers']} numbers of state; ZeRO-1 keeps 2 per element of its "
                f"shard only, 2·{shard} = {2 * shard}. The parameters can come out right "
                f"while each rank keeps the whole model's optimizer state: that saves no memory "
                f"(plain data parallelism, not ZeRO)")
    if got["own_state_numbers"] != 2 * shard:
        return (f"{where}: self.optimizer holds {got['own_state_numbers']} numbers of state "
                f"after {STEPS} steps; AdamW stepping this rank's shard holds 2·{shard} "
                f"= {2 * shard} (momentum and variance): run self.optimizer on the shard, it "
                f"does the update")
    limit = 4 * (p + world * shard + 4 * shard) + SCALAR_ALLOWANCE
    if got["held_bytes"] > limit:
        return (f"{where}: your object holds {got['held_bytes']} B of tensors between steps; "
                f"ZeRO-1 needs at most {limit} B: the parameters ({p}), one "
                f"padded buffer ({world}·{shard}), the shard, its gradient and its AdamW state "
                f"({shard} each), fp32, and {SCALAR_ALLOWANCE} B of scalars. Keeping state for "
                f"every parameter saves no memory (make the padded gradient inside step)")
    return None


def _launch(zero_cls, world: int) -> list:
    """Every rank's results on `world` ranks. A failure on another world than WORLD's, which
    ran without one first, is the learner's world size typed in: said so, as a failed check."""
    try:
        return launch(_on_rank, world, zero_cls, backend="gloo", timeout=60)
    except WorkerError as error:
        if world == WORLD:
            raise
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AssertionError(
            f"on {world} ranks your Zero1 failed ({first:.300}), after running without error "
            f"on {WORLD}: N is the world's size, dist.get_world_size(), not a number typed in"
        ) from error


def check_zero1(zero_cls, namespace) -> dict:
    """Run `zero_cls(flat, **ADAMW)` and its `.step(flat_grad)` on each world of WORLDS (one gloo
    launch each) for each P in SIZES, STEPS steps (ShardedOptimizer switched off), and require:
    parameters equal to one-process AdamW, every optimizer the object holds keeping 2·ceil(P/N)
    numbers of state at most and all its tensors within the bound, one reduce-scatter and one
    all-gather per step with exact bytes. Returns, on WORLD ranks, the first model's per-rank
    results ("results"), every model's ("cases"), and its shard size."""
    with forbidden(namespace, {ShardedOptimizer: _NOT_YOURS}):
        runs = {world: _launch(zero_cls, world) for world in WORLDS}
    for world, per_rank in runs.items():
        for k, p in enumerate(SIZES):
            want, shard = reference_params(world, p), math.ceil(p / world)
            for rank, models in enumerate(per_rank):
                problem = _numbers_problem(models[k], want, rank, p, shard, world)
                assert problem is None, problem
    for world, per_rank in runs.items():
        for k, p in enumerate(SIZES):
            shard = math.ceil(p / world)
            for rank, models in enumerate(per_rank):
                problem = _memory_problem(models[k], rank, p, shard, world)
                assert problem is None, problem
                problem = _traffic_problem(models[k]["traffic"], shard, world)
                assert problem is None, f"P = {p} on {world} ranks, rank {rank}: {problem}"
    per_rank = runs[WORLD]
    return {"results": [models[0] for models in per_rank],
            "cases": {p: [models[k] for models in per_rank] for k, p in enumerate(SIZES)},
            "reference": reference_params(WORLD, P), "shard": math.ceil(P / WORLD)}

"""What a 3D step sends on each of a rank's three groups: traced, and in closed form.

Why split by group: the three parallelisms have different traffic and belong on different
links. Per rank and per step, with m micro-batches of b sequences of s tokens, hidden size h
(an activation A = b·s·h·4 bytes in fp32) and L_stage layers on the rank's stage:

* tp: 4 all-reduces of A per layer per micro-batch: g after attention and after the MLP going
  forward, f's conjugate before each of them going back (Megatron-LM: 2 forward + 2 backward);
* pp: per micro-batch, one send of A forward (unless the last stage) and one of A's gradient
  backward (unless the first), and the mirror-image receives; plus `run_step`'s barrier;
* dp: one all-reduce of the rank's gradients = the bytes of its own parameters: its stage's
  layers with its tp slices (`tplab.tp.plan`), the embedding on the first stage, the norm and
  head on the last.

`trace_by_group` counts them from the one instrumentation point (`tplab.comm.hooks`, which
`tplab.comm.trace()` subscribes to as well): `trace()` records no group, so this subscriber
files each call under the group it was made on; `expected_traffic` is the formula.
"""
from __future__ import annotations

import contextlib

from tplab.comm import hooks
from tplab.comm.tracing import Trace
from tplab.grid3d.model import TINY, Config, stage_layers
from tplab.mesh import Grid
from tplab.tp.plan import shard_plan, tensor_shapes

__all__ = ["trace_by_group", "expected_traffic", "expected_bytes", "shard_numel"]

FP32 = 4


@contextlib.contextmanager
def trace_by_group(groups: dict):
    """Yield {name: Trace} for each name of `groups` ({"dp": group, ...}) and "world" (calls on
    any other group, or none); every call this process makes in the block lands in one."""
    traces = {name: Trace() for name in [*groups, "world"]}
    names = {id(g): name for name, g in groups.items()}

    def note(kind, call):
        if kind == "start":
            traces[names.get(id(call.group), "world")].record(call.op, call.nbytes, call.impl)

    with hooks.subscribe(note):
        yield traces


def shard_numel(config: Config, pp: int, tp: int, stage: int, tp_rank: int) -> int:
    """Parameters held by the rank at (stage, tp_rank): what its dp all-reduce carries."""
    shapes, plan = tensor_shapes(config), shard_plan(config, tp)[tp_rank]
    per_layer = sum(s.numel(shapes[name]) for name, s in plan.layer.items())
    total = per_layer * len(stage_layers(config, pp)[stage])
    embed = config.vocab_size * config.hidden
    if stage == 0:
        total += embed
    if stage == pp - 1:
        total += config.hidden + embed  # final norm, untied head
    return total


def expected_traffic(grid: Grid, rank: int, config: Config = TINY, *, steps: int,
                     micro_batches: int, micro_batch_size: int, seq: int) -> dict:
    """{group: {op: {"calls": n, "bytes": b}}} this rank makes in `steps` steps of `train_3d`,
    by the formulas above (ops named as traced: "all_reduce", "isend", "recv", "barrier")."""
    where, m = grid.coords(rank), micro_batches
    act = micro_batch_size * seq * config.hidden * FP32
    traffic: dict = {"dp": {}, "pp": {}, "tp": {}, "world": {}}

    def add(group, op, calls, nbytes):
        if calls:
            traffic[group][op] = {"calls": calls, "bytes": nbytes}

    if grid.tp > 1:
        calls = steps * m * 4 * len(stage_layers(config, grid.pp)[where.pp])
        add("tp", "all_reduce", calls, calls * act)
    boundaries = int(where.pp > 0) + int(where.pp < grid.pp - 1)  # neighbours it talks to
    add("pp", "barrier", steps, 0)
    add("pp", "isend", steps * m * boundaries, steps * m * boundaries * act)
    add("pp", "recv", steps * m * boundaries, steps * m * boundaries * act)
    if grid.dp > 1:
        numel = shard_numel(config, grid.pp, grid.tp, where.pp, where.tp)
        add("dp", "all_reduce", steps, steps * numel * FP32)
    return traffic


def expected_bytes(grid: Grid, rank: int, config: Config = TINY, **sizes) -> dict:
    """{group: {op: bytes}}: `expected_traffic` without the call counts."""
    return {group: {op: c["bytes"] for op, c in ops.items()}
            for group, ops in expected_traffic(grid, rank, config, **sizes).items()}

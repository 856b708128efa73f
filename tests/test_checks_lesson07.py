"""The machinery of exercise 07's checks, without ranks (the graded runs launch them: see
test_course_grading and test_wrong_answers): each check's cases can tell the slips apart."""
import math

import pytest
import torch

from tplab.checks import lesson07, lesson07_plan, lesson07_zero
from tplab.cost import LLAMA2_70B, decode_memory


def grid_groups(world, dp, pp, tp):
    if dp * pp * tp != world:
        raise ValueError("no grid")
    rank = lambda p, d, t: (p * dp + d) * tp + t  # noqa: E731
    return {"tp": [[rank(p, d, t) for t in range(tp)] for p in range(pp) for d in range(dp)],
            "dp": [[rank(p, d, t) for d in range(dp)] for p in range(pp) for t in range(tp)],
            "pp": [[rank(p, d, t) for p in range(pp)] for d in range(dp) for t in range(tp)]}


MESH = {case: lesson07.reference_groups(*case) for case in lesson07.MESH_CASES}


def test_grid_check_passes_the_megatron_order_and_names_another_order():
    assert lesson07.check_grid_groups(grid_groups, {}, MESH)[(2, 2, 2)]["dp"] == [
        [0, 2], [1, 3], [4, 6], [5, 7]]

    def dp_fastest(world, dp, pp, tp):   # rank = (p·tp + t)·dp + d
        rank = lambda p, d, t: (p * tp + t) * dp + d  # noqa: E731
        return {"tp": [[rank(p, d, t) for t in range(tp)] for p in range(pp) for d in range(dp)],
                "dp": [[rank(p, d, t) for d in range(dp)] for p in range(pp) for t in range(tp)],
                "pp": [[rank(p, d, t) for p in range(pp)] for d in range(dp) for t in range(tp)]}

    with pytest.raises(AssertionError, match="dp varying fastest, then tp, then pp"):
        lesson07.check_grid_groups(dp_fastest, {}, MESH)


def test_grid_check_switches_tplab_mesh_off_while_the_learner_runs():
    def borrowed(world, dp, pp, tp):
        from tplab.mesh import Grid
        return {dim: Grid(dp, pp, tp).groups(dim) for dim in ("dp", "pp", "tp")}

    with pytest.raises(AssertionError, match="called tplab.mesh.Grid"):
        lesson07.check_grid_groups(borrowed, {}, MESH)


def test_zero_reference_tells_a_sum_from_an_average():
    """eps = 0.1 makes Adam's step depend on the gradient's scale (at 1e-8 it hardly does)."""
    flat = torch.nn.Parameter(lesson07_zero.initial_params())
    optimizer = torch.optim.AdamW([flat], **lesson07_zero.ADAMW)
    flat.grad = sum(lesson07_zero.rank_grad(0, r) for r in range(lesson07_zero.WORLD))
    optimizer.step()
    averaged = lesson07_zero.reference_params()[0]
    assert (flat.detach() - averaged).abs().max() > 1e-3
    assert lesson07_zero.P % lesson07_zero.WORLD  # the last shard is padded


def test_plan_reference_on_the_interview_case_and_the_exact_thresholds():
    headline = lesson07_plan.reference_choice(25, 4096)
    assert {k: headline[k] for k in lesson07_plan.KEYS} == {"tp": 8, "pp": 1, "dp": 1,
                                                           "batch": 128}
    target, context, world, hw, batches = lesson07_plan.VARIANTS[8]   # memory equal to the need
    row = lesson07_plan.reference_choice(target, context, world, hw, batches)
    b = math.ceil(row["batch"] / row["dp"])
    assert decode_memory(LLAMA2_70B, row["tp"], row["pp"], b, context)["total"] == hw.memory_bytes
    short = lesson07_plan.VARIANTS[9][3]                 # 1 MB less: same GB to one decimal
    assert round(short.memory_bytes / 1e9, 1) == round(hw.memory_bytes / 1e9, 1)
    assert lesson07_plan.reference_choice(*lesson07_plan.VARIANTS[9])["batch"] < row["batch"]
    target, *rest = lesson07_plan.VARIANTS[10]                # target equal to the time
    assert lesson07_plan.reference_choice(target, *rest)["ms_per_token"] == target
    assert lesson07_plan.reference_choice(10, 4096, 8, lesson07_plan.H100_4) is None


def test_plan_tie_goes_to_fewer_replicas_and_the_split_rounds_up():
    tie = lesson07_plan.reference_choice(200, 4096, 8, lesson07_plan.H100_4, (1,))
    assert (tie["tp"], tie["pp"], tie["dp"]) == (4, 2, 1)    # (4, 1, 2) gives the same tokens/s
    odd = next(v for v in lesson07_plan.VARIANTS if v[4] == lesson07_plan.ODD)
    assert lesson07_plan.reference_choice(*odd)["batch"] == 27   # 81 // 2 = 40 would meet it


def test_plan_message_names_the_rule_not_the_answer():
    def floor_split(target_ms, context, world=8, hw=lesson07_plan.H100, batches=()):
        from tplab.cost import decode_time, factorizations
        best = None
        for tp, pp, dp in factorizations(world, LLAMA2_70B, hw.gpus_per_server):
            for batch in batches:
                b = max(batch // dp, 1)
                need = decode_memory(LLAMA2_70B, tp, pp, b, context)["total"]
                ms = decode_time(LLAMA2_70B, tp, hw, b, context)["ms_per_token"]
                if need <= hw.memory_bytes and ms <= target_ms:
                    key = (batch / ms, -dp)
                    if best is None or key > best[0]:
                        best = (key, {"tp": tp, "pp": pp, "dp": dp, "batch": batch})
        return best and best[1]

    with pytest.raises(AssertionError) as caught:
        lesson07_plan.check_choices(floor_split, {})
    assert "expected" not in str(caught.value) and "ceil(B/dp)" in str(caught.value)


def test_plan_check_switches_the_planner_off():
    def borrowed(target_ms, context, world=8, hw=None, batches=None):
        from tplab.cost import plan_decode
        return plan_decode(1, context, world)

    with pytest.raises(AssertionError, match="called tplab.cost.plan_decode"):
        lesson07_plan.check_choices(borrowed, {})


def test_forbid_reaches_a_reload_a_tuple_default_and_a_closure():
    import importlib

    import tplab.mesh
    from tplab.mesh import Grid

    def reloaded(world, dp, pp, tp):
        grid = importlib.reload(tplab.mesh).Grid(dp, pp, tp)
        return {d: grid.groups(d) for d in ("dp", "pp", "tp")}

    def in_tuple(world, dp, pp, tp, _lib=(Grid,)):
        return {d: _lib[0](dp, pp, tp).groups(d) for d in ("dp", "pp", "tp")}

    lib = Grid

    def in_closure(world, dp, pp, tp):
        return {d: lib(dp, pp, tp).groups(d) for d in ("dp", "pp", "tp")}

    try:
        for fn in (reloaded, in_tuple, in_closure):
            with pytest.raises(AssertionError, match="called tplab.mesh.Grid"):
                lesson07.check_grid_groups(fn, {"fn": fn, "__name__": __name__}, MESH)
        assert in_tuple.__defaults__ == ((Grid,),) and lib is Grid    # put back
    finally:
        importlib.reload(tplab.mesh)
    assert tplab.mesh.Grid(2, 1, 1).world == 2                       # guard off again


def test_grid_message_names_a_wrong_group_not_the_expected_table():
    def dp_ignores_stage(world, dp, pp, tp):
        groups = grid_groups(world, dp, pp, tp)
        groups["dp"] = [[d * tp + t for d in range(dp)] for p in range(pp) for t in range(tp)]
        return groups

    with pytest.raises(AssertionError) as caught:
        lesson07.check_grid_groups(dp_ignores_stage, {}, MESH)
    assert "expected" not in str(caught.value).split("(expected")[0]
    assert "rank 0 is in 2 dp groups" in str(caught.value)
    assert (16, 2, 2, 4) in lesson07.PURE_CASES
    drawn = lesson07.drawn_cases(3, seed=1)
    assert all(8 <= w <= 64 and w == dp * pp * tp for w, dp, pp, tp in drawn)


def test_zero_memory_counts_every_optimizer_the_object_holds():
    class Hidden:
        def __init__(self):
            whole = torch.nn.Parameter(torch.zeros(37))
            self.helpers = {"opt": torch.optim.AdamW([whole])}
            self.shard = torch.nn.Parameter(torch.zeros(13))
            self.optimizer = torch.optim.AdamW([self.shard])

    tensors, optimizers = lesson07_zero.held(Hidden())
    assert len(optimizers) == 2 and sum(t.numel() for t in tensors) == 37 + 13


def _zero1_solution_source():
    import json
    from pathlib import Path
    cells = json.loads(Path("solutions/07_putting_it_together.ipynb").read_text())["cells"]
    return next("".join(c["source"]) for c in cells
                if c.get("metadata", {}).get("tplab", {}).get("exercise") == "ex07_zero")


def test_checks_launch_on_gloo_even_with_eight_gpus(monkeypatch):
    """With >= N GPUs visible, pick_backend would choose NCCL for CPU tensors and fail; the
    checks pass backend="gloo" (the forked ranks inherit the patched device count)."""
    import torch.distributed as dist

    from tplab import comm
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    assert lesson07.check_grid_groups(grid_groups, {})[(2, 1, 4)]["tp"] == [[0, 1, 2, 3],
                                                                           [4, 5, 6, 7]]
    namespace = {"math": math, "torch": torch, "dist": dist, "comm": comm}
    exec(_zero1_solution_source(), namespace)
    assert lesson07_zero.check_zero1(namespace["Zero1"], namespace)["shard"] == 13


def test_grid_check_refuses_a_world_that_floor_division_accepts():
    def floor_checked(world, dp, pp, tp):   # 9 // (2·2) = 2: 2·2·2 passes on 9 ranks
        if tp != world // (dp * pp):
            raise ValueError("no grid")
        return grid_groups(dp * pp * tp, dp, pp, tp)

    with pytest.raises(AssertionError, match="is not a world of 9"):
        lesson07.check_grid_groups(floor_checked, {}, MESH)


def test_zero_check_runs_another_world_than_three():
    """A world size typed in as 3 runs on the first launch and is caught on the second."""
    import torch.distributed as dist

    from tplab import comm
    assert len(lesson07_zero.WORLDS) > 1 and 2 not in lesson07_zero.WORLDS
    namespace = {"math": math, "torch": torch, "dist": dist, "comm": comm}
    source = _zero1_solution_source().replace("dist.get_world_size()", "3")
    exec(source, namespace)
    with pytest.raises(AssertionError, match="on 4 ranks your Zero1 failed"):
        lesson07_zero.check_zero1(namespace["Zero1"], namespace)

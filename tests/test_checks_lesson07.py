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
    target, context, world, hw = lesson07_plan.VARIANTS[8]     # memory equal to the need
    row = lesson07_plan.reference_choice(target, context, world, hw)
    b = math.ceil(row["batch"] / row["dp"])
    assert decode_memory(LLAMA2_70B, row["tp"], row["pp"], b, context)["total"] == hw.memory_bytes
    target, *rest = lesson07_plan.VARIANTS[9]                 # target equal to the time
    assert lesson07_plan.reference_choice(target, *rest)["ms_per_token"] == target
    assert lesson07_plan.reference_choice(10, 4096, 8, lesson07_plan.H100_4) is None


def test_plan_check_switches_the_planner_off():
    def borrowed(target_ms, context, world=8, hw=None):
        from tplab.cost import plan_decode
        return plan_decode(1, context, world)

    with pytest.raises(AssertionError, match="called tplab.cost.plan_decode"):
        lesson07_plan.check_choices(borrowed, {})

"""tplab.cost: the formulas alone, the published cases (pure arithmetic), the plan, the pictures.
The cases measured on this machine run in bench/cost_model.py and lesson 07, not here."""
from __future__ import annotations

import matplotlib
import pytest

from tplab.comm.cost import ring_all_reduce_time
from tplab.cost import (
    A100_330W,
    H100,
    LLAMA2_7B,
    LLAMA2_70B,
    SMOLLM2_135M,
    all_reduce_s,
    best,
    decode_memory,
    decode_time,
    factorizations,
    plan_clusters,
    plan_decode,
    plan_training,
    published_cases,
    training_memory,
    training_step_time,
)
from tplab.cost.machines import DECODE_BANDWIDTH_EFFICIENCY, Hardware
from tplab.cost.measure import MachineFit
from tplab.cost.memory import activation_bytes_per_layer
from tplab.zero import zero_memory_bytes

matplotlib.use("Agg")


def test_parameter_counts_match_the_published_models():
    assert LLAMA2_70B.params() == 68_976_648_192            # 68.98B (REFERENCES)
    assert SMOLLM2_135M.params() == 134_515_008             # the GGUF's count
    assert round(LLAMA2_7B.params() / 1e9, 2) == 6.74
    assert LLAMA2_70B.kv_bytes_per_token() == 2 * 80 * 8 * 128 * 2   # 0.33 MB bf16


def test_zero_paper_example_exact():
    rows = published_cases()[:4]
    assert [r["predicted"] for r in rows] == [120.0, 31.4, 16.6, 1.9]
    assert all(r["ratio"] == 1.0 for r in rows)


def test_published_speeds_within_25_percent():
    rows = published_cases()[4:]
    assert len(rows) == 4                                   # gpt-fast TP 2/4/8, NeMo
    for r in rows:
        assert 0.75 <= r["ratio"] <= 1.25, r


def test_decode_efficiency_is_gpt_fast_one_gpu_calibration():
    # the one assumption behind decoding: 7B on one A100 gives back gpt-fast's 104.9 tok/s
    one = decode_time(LLAMA2_7B, 1, A100_330W, context=200, head_split=False)
    assert one["comm_s"] == 0 and one["tokens_per_s"] == pytest.approx(104.9, rel=0.01)
    assert DECODE_BANDWIDTH_EFFICIENCY == pytest.approx(1397.31 / 2039)


def test_all_reduce_is_ring_formula_plus_nccl_start():
    n, nbytes = 8, 2**20
    expected = H100.base_latency_s + ring_all_reduce_time(nbytes, n, H100.alpha, H100.beta)
    assert all_reduce_s(nbytes, n, H100) == expected
    assert all_reduce_s(nbytes, 1, H100) == 0.0


def test_model_state_is_zero_formula_on_the_rank_share():
    m = training_memory(LLAMA2_70B, dp=4, pp=4, tp=4, micro_batches=32, micro_batch=1,
                        seq=4096, zero_stage=1, recompute="selective")
    psi = (20 * LLAMA2_70B.layer_params() + LLAMA2_70B.embedding_params()) / 4
    state = m["parameters"] + m["gradients"] + m["optimizer"]
    assert state == pytest.approx(zero_memory_bytes(psi, 4, 1))
    assert m["total"] == pytest.approx(state + m["activations"])


def test_activations_follow_korthikanti():
    s, b, h, a, t = 4096, 1, 8192, 64, 4
    sbh = s * b * h
    sel = activation_bytes_per_layer(LLAMA2_70B, s, b, t, "selective", sequence_parallel=True)
    assert sel == pytest.approx(34 * sbh / t)
    none = activation_bytes_per_layer(LLAMA2_70B, s, b, t, "none", sequence_parallel=False)
    assert none == pytest.approx(sbh * (10 + 24 / t + 5 * a * s / (h * t)))
    assert activation_bytes_per_layer(LLAMA2_70B, s, b, t, "full") == 2 * sbh / t
    # 1F1B: the first stage holds min(p, m) micro-batches
    one = training_memory(LLAMA2_70B, 1, 4, 4, 1, 1, s)["activations"]
    many = training_memory(LLAMA2_70B, 1, 4, 4, 32, 1, s)["activations"]
    assert many == pytest.approx(4 * one)


def test_kv_cache_split_by_kv_heads_then_replicated():
    per_token = LLAMA2_70B.kv_bytes_per_token()
    assert decode_memory(LLAMA2_70B, 8, batch=2, context=10)["kv_cache"] == per_token / 8 * 20
    assert decode_memory(SMOLLM2_135M, 9, context=1, bytes_per=4)["kv_cache"] == \
        SMOLLM2_135M.kv_bytes_per_token(4) / 3


@pytest.mark.parametrize("call, message", [
    (lambda: training_memory(LLAMA2_70B, 1, 3, 1, 1, 1, 8), "pp=3 does not divide"),
    (lambda: decode_time(LLAMA2_70B, 12, H100), "tp=12 neither divides"),
    (lambda: training_memory(LLAMA2_70B, 0, 1, 1, 1, 1, 8), "dp must be an integer >= 1"),
    (lambda: activation_bytes_per_layer(LLAMA2_70B, 8, 1, 1, "some"), "recompute is one of"),
])
def test_bad_layouts_say_what_to_do(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_training_time_terms():
    r = training_step_time(LLAMA2_70B, 4, 4, 4, 32, 1, 4096, H100, v=20, fp8=True)
    assert r["bubble_s"] == pytest.approx(3 / (20 * 32) * r["compute_s"])
    parts = ("compute_s", "bubble_s", "tp_comm_s", "pp_comm_s", "dp_comm_s")
    assert r["total_s"] == pytest.approx(sum(r[k] for k in parts))
    bf16 = training_step_time(LLAMA2_70B, 4, 4, 4, 32, 1, 4096, H100, v=20)
    assert bf16["compute_s"] == pytest.approx(2 * r["compute_s"], rel=0.01)


def test_plan_70b_on_8_h100():
    assert all(tp * pp * dp == 8 for tp, pp, dp in factorizations(8))
    for batch in (1, 32):
        rows = plan_decode(batch)
        top, why = best(rows)
        assert (top["tp"], top["pp"], top["dp"]) == (8, 1, 1) and "fit" in why
        assert not next(r for r in rows if r["tp"] == 1 and r["pp"] == 1)["fits"]  # 138 GB
    top, why = best(plan_training(), "tokens_per_s_per_gpu")
    assert top is None and "nothing fits" in why     # 16 bytes × 69B / 8 = 138 GB > 80 GB
    top, _ = best(plan_training(world=16), "tokens_per_s_per_gpu")
    assert top is not None and top["memory_GB"] <= 80


def test_this_machine_predictions_are_the_formulas():
    from tplab.cost import here
    fit = MachineFit(flops=5e10, bytes_per_s=1e10, adamw_s_per_param=2e-8, shm=(1e-5, 1e-10),
                     gloo=(1e-4, 5e-10))
    hw = fit.hardware("gloo")
    assert isinstance(hw, Hardware) and hw.flops_efficiency == 1 and hw.decode_efficiency == 1
    psi = here._params(here.DEPTH)
    products = (6 * here.DEPTH - 2) * here.ROWS * here.WIDTH ** 2   # no input gradient
    ddp = products / 5e10 + ring_all_reduce_time(4 * psi, 2, 1e-4, 5e-10) + 36 * psi / 1e10
    assert here.predict_ddp_step(fit) == pytest.approx(ddp)
    roofline = decode_time(SMOLLM2_135M, 2, fit.hardware("shm"), context=20, bytes_per=4,
                           extra_all_reduces=2)["total_s"]
    assert roofline > SMOLLM2_135M.params() * 4 / 2 / 1e10     # at least half the weights read


def test_pictures_are_one_call():
    from tplab.viz.cost import draw_memory_breakdown, draw_predicted_vs_actual
    configs = [(f"tp{tp}", decode_memory(LLAMA2_70B, tp, batch=32)) for tp in (2, 4, 8)]
    assert draw_memory_breakdown(configs, H100.memory_bytes).axes
    assert draw_predicted_vs_actual(published_cases()).axes


def test_plan_prices_each_zero_stage_and_recompute():
    rows = {(r["tp"], r["pp"], r["zero"], r["recompute"]): r for r in plan_training(world=16)}
    for tp, pp in ((1, 1), (2, 2)):
        dp = 16 // (tp * pp)
        for stage in (1, 3):
            for recompute in ("selective", "full"):
                step = training_step_time(LLAMA2_70B, dp, pp, tp, 64 // dp, 1, 4096, H100,
                                          zero_stage=stage, recompute=recompute)
                assert rows[tp, pp, stage, recompute]["step_s"] == step["total_s"]
        # ZeRO-3's 1.5x traffic shows where DP traffic is exposed (tp=1 pp=1: 16 replicas)
        assert rows[1, 1, 3, "selective"]["step_s"] > rows[1, 1, 1, "selective"]["step_s"]
    plain = training_step_time(LLAMA2_70B, 2, 2, 4, 32, 1, 4096, H100)
    full = training_step_time(LLAMA2_70B, 2, 2, 4, 32, 1, 4096, H100, recompute="full")
    assert full["compute_s"] == pytest.approx(4 / 3 * plain["compute_s"])
    assert full["tp_comm_s"] == pytest.approx(1.5 * plain["tp_comm_s"])
    with pytest.raises(ValueError, match="recompute is"):
        training_step_time(LLAMA2_70B, 1, 1, 8, 1, 1, 8, H100, recompute="half")


def test_smallest_cluster_and_advice_when_state_alone_is_too_big():
    clusters = plan_clusters((8, 16, 32, 64))
    assert [c["best"] is None for c in clusters] == [True, False, False, False]
    assert all(c["best"]["tp"] <= 8 for c in clusters[1:])         # tp inside one server
    _, why = best(plan_training(), "tokens_per_s_per_gpu")
    assert "model state alone" in why and "context" not in why


def test_one_ratio_convention_time_over_time():
    from tplab.cost.validate import time_ratio
    rows = {r["case"]: r for r in published_cases()}
    for case, r in rows.items():
        if case.endswith("(tok/s)") or case.endswith("(tokens/s/GPU)"):
            assert time_ratio(r) == pytest.approx(r["measured_or_published"] / r["predicted"])
        else:
            assert time_ratio(r) == r["ratio"]


def test_off_shape_ddp_prediction_scales_with_the_shape():
    from tplab.cost import here
    fit = MachineFit(flops=5e10, bytes_per_s=1e10, adamw_s_per_param=2e-8, shm=(1e-5, 1e-10),
                     gloo=(1e-4, 5e-10))
    psi = here._params(here.DEPTH, 2048)
    products = (6 * here.DEPTH - 2) * 16 * 2048 ** 2
    ddp = products / 5e10 + ring_all_reduce_time(4 * psi, 2, 1e-4, 5e-10) + 36 * psi / 1e10
    assert here.predict_ddp_step(fit, width=2048, rows=16) == pytest.approx(ddp)


def test_every_launch_here_asks_for_gloo():
    import inspect

    from tplab.cost import here, measure
    for module in (here, measure):
        source = inspect.getsource(module)
        assert source.count("tplab.launch(") == source.count('backend="gloo"') > 0

"""The cost model against published figures: one set of assumptions, every case.

Why: a model that only agrees with the machine it was fitted on has proved little. These cases
were measured by others, on hardware this course cannot reach; the model sees only their
configuration and the constants in `tplab.cost.machines` (peaks from datasheets, two cited
efficiencies, NCCL's latencies), never the answer. Each row: {"case", "predicted",
"measured_or_published", "ratio" (predicted / published), "source"}.
"""
from __future__ import annotations

from tplab.cost.machines import A100_330W, H100
from tplab.cost.model import LLAMA2_70B
from tplab.cost.time import decode_time, training_step_time
from tplab.zero import zero_memory_bytes

__all__ = ["ZERO_PAPER_GB", "GPT_FAST_70B_TOK_S", "NEMO_70B_TOK_S_GPU", "published_cases", "row",
           "time_ratio", "GPT_FAST_URL", "NEMO_URL"]

GPT_FAST_URL = "https://github.com/pytorch-labs/gpt-fast"
NEMO_URL = ("https://docs.nvidia.com/nemo-framework/user-guide/24.09/performance/"
            "performance_summary.html")
RATE_UNITS = ("(tok/s)", "(tokens/s/GPU)")   # a case labelled so is a speed, not a time

# Rajbhandari et al. 2020 (arXiv:1910.02054), Figure 1: Ψ = 7.5B, N = 64, K = 12, GB per GPU
ZERO_PAPER_GB = {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.9}
# pytorch-labs/gpt-fast README: Llama-2-70B bf16, batch 1, 8×A100-80GB power-limited to 330 W
GPT_FAST_70B_TOK_S = {2: 21.3, 4: 38.0, 8: 62.5}
GPT_FAST_CONTEXT = 200   # its benchmark: a short prompt, 200 new tokens (cache of ~200 read)
# NeMo 24.09 performance summary: Llama-2-70B, 64 H100 (DGX), FP8, TP4 PP4 VP20, GBS 128,
# MBS 1, sequence 4096: 1,728 tokens/s/GPU (768 model TFLOP/s/GPU)
NEMO_70B_TOK_S_GPU = 1728.0
NEMO = dict(dp=4, pp=4, tp=4, micro_batches=128 // 4, micro_batch=1, seq=4096, v=20, fp8=True)


def row(case: str, predicted: float, published: float, source: str) -> dict:
    return {"case": case, "predicted": predicted, "measured_or_published": published,
            "ratio": predicted / published, "source": source}


def published_cases() -> list[dict]:
    """Every published validation case, predicted (pure arithmetic, instant)."""
    rows = [row(f"ZeRO paper 7.5B on 64 GPUs, stage {stage} (GB/GPU, rounded)",
                round(zero_memory_bytes(7.5e9, 64, stage) / 1e9, 1), gb,
                "Rajbhandari et al. 2020, arXiv:1910.02054, Figure 1")
            for stage, gb in ZERO_PAPER_GB.items()]
    for tp, tok_s in GPT_FAST_70B_TOK_S.items():
        pred = decode_time(LLAMA2_70B, tp, A100_330W, context=GPT_FAST_CONTEXT, head_split=False)
        rows.append(row(f"gpt-fast Llama-2-70B batch-1 decode, TP{tp} on A100 330 W (tok/s)",
                        pred["tokens_per_s"], tok_s, f"gpt-fast README, {GPT_FAST_URL}"))
    pred = training_step_time(LLAMA2_70B, hw=H100, **NEMO)
    rows.append(row("NeMo Llama-2-70B training, 64 H100 TP4 PP4 VP20 FP8 (tokens/s/GPU)",
                    pred["tokens_per_s_per_gpu"], NEMO_70B_TOK_S_GPU,
                    f"NVIDIA NeMo 24.09 performance summary, {NEMO_URL}"))
    return rows


def time_ratio(result: dict) -> float:
    """One convention for every row: predicted time / actual time (below one: the model is
    optimistic). Speed rows (tok/s) are inverted; memory rows stay predicted / actual bytes."""
    speed = result["case"].endswith(RATE_UNITS)
    return 1 / result["ratio"] if speed else result["ratio"]

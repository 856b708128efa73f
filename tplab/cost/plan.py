"""Plan Llama-2-70B on one server of 8×H100-80GB: every (tp, pp, dp), what fits, how fast.

Why enumerate: with 8 GPUs there are only ten factorisations (tp·pp·dp = 8; for Llama-2-70B
every one is allowed), and the answer ("TP 8 for
latency, as much DP as fits for throughput") should come out of the memory and time formulas
rather than be asserted. Rows are plain dicts for a notebook table; `best` picks the fastest
that fits and says why. Memory: `tplab.cost.memory`; time: `tplab.cost.time` (their sources).
"""
from __future__ import annotations

from tplab.checks.forbid import guard  # exercise 07.3's check hides these, even reloaded
from tplab.cost.machines import H100, Hardware
from tplab.cost.memory import decode_memory, training_memory
from tplab.cost.model import LLAMA2_70B, ModelShape
from tplab.cost.time import decode_time, training_step_time

__all__ = ["factorizations", "plan_decode", "plan_training", "plan_clusters", "best"]

GB = 1e9


def factorizations(world: int, shape: ModelShape = LLAMA2_70B,
                   max_tp: int | None = None) -> list[tuple[int, int, int]]:
    """(tp, pp, dp) with tp·pp·dp = world, tp dividing the heads and pp the layers; tp at most
    `max_tp` (the GPUs of one server: tp's all-reduces are priced on NVLink) when given."""
    return [(tp, pp, world // (tp * pp)) for tp in range(1, world + 1) for pp in range(1, world + 1)
            if world % (tp * pp) == 0 and shape.n_heads % tp == 0 and shape.n_layers % pp == 0
            and (max_tp is None or tp <= max_tp)]


def plan_decode(batch: int = 1, context: int = 4096, world: int = 8, hw: Hardware = H100,
                shape: ModelShape = LLAMA2_70B) -> list[dict]:
    """Decoding with bf16 weights and a KV cache of `context` tokens per sequence. The batch is
    split over dp replicas; pipeline stages run one after another for one token and the batch
    is NOT cut into micro-batches (no overlap of stages, at any batch), so ms/token = pp × one
    stage's time. Fits: total ≤ the GPU's memory (all 80 GB: no reserve for the CUDA context
    or NCCL's buffers, ~1-5 GB in practice, so a total within a few GB of it is marginal)."""
    guard("tplab.cost.plan.plan_decode")
    rows = []
    for tp, pp, dp in factorizations(world, shape, hw.gpus_per_server):
        per_replica = -(-batch // dp)
        mem = decode_memory(shape, tp, pp, per_replica, context)
        step = decode_time(shape, tp, hw, per_replica, context)
        ms = step["ms_per_token"]   # the whole model's layers on tp ranks; pp stages in turn
        rows.append({"tp": tp, "pp": pp, "dp": dp, "batch": batch, "context": context,
                     "weights_GB": mem["weights"] / GB, "kv_cache_GB": mem["kv_cache"] / GB,
                     "memory_GB": mem["total"] / GB, "fits": mem["total"] <= hw.memory_bytes,
                     "ms_per_token": ms, "tokens_per_s": batch / ms * 1e3})
    return rows


def plan_training(seq: int = 4096, global_batch: int = 64, micro_batch: int = 1,
                  world: int = 8, hw: Hardware = H100, shape: ModelShape = LLAMA2_70B,
                  zero_stages=(1, 3), recomputes=("selective", "full")) -> list[dict]:
    """Training in bf16 with mixed-precision AdamW: every factorisation (tp within a server) ×
    ZeRO stage × recomputation; micro-batches per replica = global_batch / (dp · micro_batch).
    Time per (layout, stage, recompute): ZeRO-3's 1.5× DP traffic, full recomputation's 4/3."""
    rows = []
    for tp, pp, dp in factorizations(world, shape, hw.gpus_per_server):
        m = global_batch // (dp * micro_batch)
        if m < 1:
            continue
        for stage in zero_stages:
            for recompute in recomputes:
                mem = training_memory(shape, dp, pp, tp, m, micro_batch, seq, stage, recompute)
                step = training_step_time(shape, dp, pp, tp, m, micro_batch, seq, hw,
                                          zero_stage=stage, recompute=recompute)
                rows.append({"tp": tp, "pp": pp, "dp": dp, "zero": stage, "recompute": recompute,
                             "memory_GB": mem["total"] / GB,
                             "state_GB": (mem["total"] - mem["activations"]) / GB,
                             "activations_GB": mem["activations"] / GB,
                             "fits": mem["total"] <= hw.memory_bytes,
                             "world": world, "step_s": step["total_s"],
                             "tokens_per_s_per_gpu": step["tokens_per_s_per_gpu"],
                             "tokens_per_s": step["tokens_per_s_per_gpu"] * world})
    return rows


def plan_clusters(worlds=(8, 16, 32, 64), **kwargs) -> list[dict]:
    """`plan_training` on each cluster size (servers of 8, tp inside one): per world its best
    fitting row (None if nothing fits), the number that fit, and `best`'s sentence."""
    out = []
    for world in worlds:
        rows = plan_training(world=world, **kwargs)
        top, why = best(rows, key="tokens_per_s_per_gpu")
        out.append({"world": world, "best": top, "fitting": sum(r["fits"] for r in rows),
                    "rows": len(rows), "why": why})
    return out


def best(rows: list[dict], key: str = "tokens_per_s") -> tuple[dict | None, str]:
    """The fitting row with the largest `key`, and a sentence saying why it wins."""
    guard("tplab.cost.plan.best")
    fitting = [r for r in rows if r["fits"]]
    if not fitting:
        least = min(rows, key=lambda r: r["memory_GB"]) if rows else None
        where = (f" (the least: {least['memory_GB']:.0f} GB at tp={least['tp']} pp={least['pp']} "
                 f"dp={least['dp']})" if least else "")
        state = min((r.get("state_GB", r.get("weights_GB", 0.0)) for r in rows), default=0.0)
        if state > H100.memory_bytes / GB:   # weights/model state alone: context cannot help
            return None, (f"nothing fits{where}: the model state alone needs {state:.0f} GB at "
                          f"best, so only more GPUs or fewer bytes per parameter help (8-bit "
                          f"optimizer state, offloading it to CPU/NVMe, a frozen base + LoRA)")
        return None, (f"nothing fits{where}: more GPUs, fewer bytes per parameter or of state, "
                      f"or shorter sequences / a smaller batch")
    top = max(fitting, key=lambda r: r[key])
    rest = sorted((r[key] for r in fitting), reverse=True)
    margin = f", {rest[0] / rest[1]:.2f}× the next" if len(rest) > 1 and rest[1] > 0 else ""
    others = len(rows) - len(fitting)
    return top, (f"tp={top['tp']} pp={top['pp']} dp={top['dp']}: {top[key]:.1f} {key}"
                 f"{margin}; {len(fitting)} of {len(rows)} fit in "
                 f"{H100.memory_bytes / GB:.0f} GB ({others} do not)")

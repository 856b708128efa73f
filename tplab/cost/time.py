"""Seconds for a decode token and a training step of a (dp, pp, tp) layout, by roofline + α–β.

Why these terms and no others: each is a published model, and each can be checked alone.

* Compute: FLOPs / (peak × efficiency) (the roofline's compute roof; Williams, Waterman and
  Patterson, CACM 2009). Decoding is under the memory roof instead: every weight a rank holds
  is read once per token, bytes / (bandwidth × efficiency), plus the KV cache it attends over
  (jax-ml scaling-book, inference chapter). The time is the larger of the two.
* Collectives: `tplab.comm.cost`'s ring formulas (Thakur, Rabenseifner & Gropp 2005) plus
  NCCL's fixed start `base_latency_s` (NVIDIA/nccl src/graph/tuning.cc). TP: 2 all-reduces of
  b·s·h per layer forward, 2 more backward (Shoeybi et al. 2019; Narayanan et al. 2021);
  sequence parallelism replaces each by a reduce-scatter + all-gather of the same bytes
  (Korthikanti et al. 2022), so the time is the same. DP: one all-reduce of the gradients
  (ZeRO-1/2 replace it by reduce-scatter + all-gather: the same bytes; ZeRO-3 1.5×,
  Rajbhandari et al. 2020), overlapped with backward or not (Li et al. 2020, arXiv:2006.15704).
* Pipeline: the bubble (p-1)/(v·m) of the ideal time (Narayanan et al. 2021;
  `tplab.pp.bubble`), and the fill/drain hops of one activation each between stages.
"""
from __future__ import annotations

from tplab.comm.cost import point_to_point_time, ring_all_reduce_time
from tplab.cost.machines import Hardware
from tplab.cost.memory import _check_degrees
from tplab.cost.model import ModelShape
from tplab.pp.bubble import bubble

__all__ = ["all_reduce_s", "decode_time", "training_step_time"]


def all_reduce_s(nbytes: float, n: int, hw: Hardware, crosses_servers: bool = False) -> float:
    """Ring all-reduce over n ranks: base + 2(n-1)·α + 2(n-1)/n·N·β (0 for one rank)."""
    if n == 1:
        return 0.0
    return hw.base_latency_s + ring_all_reduce_time(nbytes, n, hw.alpha,
                                                    hw.link_beta(crosses_servers))


def decode_time(shape: ModelShape, tp: int, hw: Hardware, batch: int = 1, context: int = 0,
                bytes_per: float = 2, head_split: bool = True,
                extra_all_reduces: int = 0) -> dict[str, float]:
    """One decoding step (one new token for each of `batch` sequences) on tp ranks.

    Weights read by the fullest rank: per layer its attention share (heads split by KV group,
    `ModelShape.rank_attention_share`) and 1/tp of the MLP; the head's vocab×h is split tp
    ways (`head_split`, tplab's vocab-parallel head) or read whole on every rank (gpt-fast
    leaves its output layer unsplit); the embedding lookup reads one row. KV cache: batch ×
    context tokens of the rank's KV heads. Communication: 2 all-reduces of batch·h·bytes per
    layer (after attention and after the MLP) plus `extra_all_reduces` tiny ones (a split
    head's arg-max). Time = max(memory, compute) + communication.
    """
    _check_degrees(shape, 1, 1, tp)
    layer = (shape.attention_params() * shape.rank_attention_share(tp)
             + shape.mlp_params() / tp + 2 * shape.hidden)
    head = shape.embedding_params() / (tp if head_split else 1)
    weight_bytes = (shape.n_layers * layer + head + shape.hidden) * bytes_per
    kv_share = max(shape.n_kv_heads // tp, 1) / shape.n_kv_heads
    kv_bytes = shape.kv_bytes_per_token(bytes_per) * kv_share * batch * context
    bandwidth = hw.bytes_per_s * hw.decode_efficiency
    memory_s = (weight_bytes + kv_bytes) / bandwidth
    compute_s = batch * shape.flops_per_token(context, training=False) / tp / (
        hw.flops * hw.flops_efficiency)
    per_all_reduce = all_reduce_s(batch * shape.hidden * bytes_per, tp, hw)
    comm_s = (2 * shape.n_layers * per_all_reduce
              + extra_all_reduces * all_reduce_s(8, tp, hw)) if tp > 1 else 0.0
    total = max(memory_s, compute_s) + comm_s
    return {"weight_bytes": weight_bytes, "kv_bytes": kv_bytes, "memory_s": memory_s,
            "compute_s": compute_s, "comm_s": comm_s, "total_s": total,
            "tokens_per_s": batch / total, "ms_per_token": total * 1e3}


def training_step_time(shape: ModelShape, dp: int, pp: int, tp: int, micro_batches: int,
                       micro_batch: int, seq: int, hw: Hardware, v: int = 1, fp8: bool = False,
                       zero_stage: int = 1, overlap_dp: bool = True,
                       overlap_tp: bool = False, recompute: str = "selective") -> dict[str, float]:
    """One optimizer step of a data-parallel replica (dp·pp·tp GPUs, tp inside a server).

    compute: m micro-batches × flops_per_token × b·s / (tp·pp) at peak × efficiency (fp8: the
    FP8 peak); bubble: bubble(p, m, v, "ideal") × compute; tp_comm: 4 all-reduces of b·s·h bf16
    per layer per micro-batch (0 if `overlap_tp`); pp_comm: 2(p-1)·v hops of b·s·h/tp bf16 on
    the inter-server link; dp_comm: the all-reduce of this rank's bf16 gradients across servers
    (1.5× for ZeRO-3), only what outlasts one micro-batch's backward if `overlap_dp`.
    `recompute="full"` runs every forward twice (Korthikanti et al. 2022): compute and bubble
    × 4/3, TP's all-reduces × 6/4 (the forward's two again); "selective" and "none" are priced
    alike (the attention core selective recomputation repeats is a few % of the FLOPs).
    """
    _check_degrees(shape, dp, pp, tp)
    peak = (hw.fp8_flops if fp8 and hw.fp8_flops else hw.flops) * hw.flops_efficiency
    tokens = micro_batch * seq
    if recompute not in ("none", "selective", "full"):
        raise ValueError(f"recompute is 'none', 'selective' or 'full', not {recompute!r}")
    again = 4 / 3 if recompute == "full" else 1.0      # forward + backward (1 + 2) + forward
    per_micro_s = shape.flops_per_token(seq) * tokens / (tp * pp) / peak * again
    compute_s = micro_batches * per_micro_s
    bubble_s = bubble(pp, micro_batches, v, "ideal") * compute_s
    activation = micro_batch * seq * shape.hidden * 2
    layers = shape.n_layers // pp
    tp_calls = 6 if recompute == "full" else 4        # per layer per micro-batch
    tp_comm_s = 0.0 if overlap_tp else (
        micro_batches * layers * tp_calls * all_reduce_s(activation, tp, hw))
    hop_s = point_to_point_time(activation / tp, 2, hw.alpha, hw.link_beta(True)) if pp > 1 else 0
    pp_comm_s = 2 * (pp - 1) * v * hop_s
    grads = shape.params() / (tp * pp) * 2
    dp_s = all_reduce_s(grads, dp, hw, crosses_servers=dp * tp * pp > hw.gpus_per_server)
    dp_s *= 1.5 if zero_stage == 3 else 1.0
    dp_comm_s = max(0.0, dp_s - per_micro_s * 2 / 3) if overlap_dp else dp_s
    total = compute_s + bubble_s + tp_comm_s + pp_comm_s + dp_comm_s
    gpus = tp * pp
    return {"compute_s": compute_s, "bubble_s": bubble_s, "tp_comm_s": tp_comm_s,
            "pp_comm_s": pp_comm_s, "dp_comm_s": dp_comm_s, "total_s": total,
            "tokens_per_s_per_gpu": micro_batches * tokens / total / gpus,
            "model_flops_per_gpu": shape.flops_per_token(seq) * micro_batches * tokens
            / total / gpus}

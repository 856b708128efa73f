"""Bytes per GPU of a (dp, pp, tp) layout: model state, activations, and the KV cache.

Why a sum of published formulas: each term has a paper behind it, and planning is choosing
which terms to shrink.

* Model state (parameters, gradients, optimizer) per ZeRO stage: Rajbhandari et al. 2020
  (arXiv:1910.02054), mixed-precision AdamW, K = 12, through `tplab.zero.zero_memory_bytes`,
  applied to the parameters one rank holds after TP and PP split them (Ψ/(tp·pp) plus the
  embedding on the first stage: the fullest rank).
* Activations per layer: Korthikanti et al. 2022 (arXiv:2205.05198), `tplab.tp.activations.
  korthikanti`: sbh(10 + 24/t + 5as/(ht)) with TP, sbh(34 + 5as/h)/t with sequence parallelism;
  selective recomputation drops the 5as/h attention term; full recomputation keeps only each
  layer's input, 2sbh (/t with SP) (their Table 2). The first stage of a 1F1B pipeline holds
  min(p, m) micro-batches at once (`tplab.pp.bubble.inflight_formula`). The paper's formula is
  for a GPT layer (MLP 4h, one K/V per head, dropout): for Llama it is an estimate.
* KV cache for decoding: 2·L·kv·d bytes per token (`ModelShape.kv_bytes_per_token`), split
  over TP ranks by KV head (replicated once tp > kv).
"""
from __future__ import annotations

from tplab.cost.model import ModelShape
from tplab.pp.bubble import inflight_formula
from tplab.tp.activations import korthikanti
from tplab.zero import zero_memory_bytes  # the paper's formula, written once

__all__ = ["RECOMPUTE", "rank_params", "training_memory", "decode_memory"]

RECOMPUTE = ("none", "selective", "full")


def _check_degrees(shape: ModelShape, dp: int, pp: int, tp: int) -> None:
    for name, value in (("dp", dp), ("pp", pp), ("tp", tp)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if shape.n_layers % pp:
        divisors = [d for d in range(1, shape.n_layers + 1) if shape.n_layers % d == 0]
        raise ValueError(f"pp={pp} does not divide {shape.name}'s {shape.n_layers} layers: "
                         f"choose a pp among {divisors}")
    if tp > shape.n_kv_heads and shape.n_heads % tp:   # up to kv: split by KV group, uneven ok
        raise ValueError(f"tp={tp} neither divides {shape.name}'s {shape.n_heads} query heads "
                         f"nor is at most its {shape.n_kv_heads} KV heads: choose such a tp")


def rank_params(shape: ModelShape, pp: int, tp: int) -> float:
    """Parameters on the fullest rank: its L/pp layers split tp ways, plus the embedding split
    tp ways (vocabulary-parallel, Shoeybi et al. 2019) on the first stage; with pp = 1 the
    whole model's share, head included."""
    if pp == 1:
        return shape.params() / tp
    return (shape.n_layers // pp * shape.layer_params() + shape.embedding_params()) / tp


def activation_bytes_per_layer(shape: ModelShape, seq: int, micro_batch: int, tp: int,
                               recompute: str = "none", sequence_parallel: bool = True) -> float:
    """One layer, one micro-batch, one rank (Korthikanti et al. 2022, their Table 2)."""
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute is one of {RECOMPUTE}, not {recompute!r}")
    sbh = seq * micro_batch * shape.hidden
    if recompute == "full":
        return 2 * sbh / (tp if sequence_parallel else 1)
    parts = korthikanti(seq, micro_batch, shape.hidden, shape.n_heads, tp, sequence_parallel)
    total = parts["replicated"] + parts["sharded"]
    if recompute == "selective":   # the 5as/h terms (softmax, its dropout, attention over V) go
        total -= 5 * shape.n_heads * seq * sbh / shape.hidden / tp
    return total


def training_memory(shape: ModelShape, dp: int, pp: int, tp: int, micro_batches: int,
                    micro_batch: int, seq: int, zero_stage: int = 1, recompute: str = "selective",
                    sequence_parallel: bool = True, k: float = 12) -> dict[str, float]:
    """Bytes on the fullest GPU (first pipeline stage): parameters, gradients, optimizer
    (ZeRO stage `zero_stage` over dp ranks; Rajbhandari et al. 2020), activations (Korthikanti
    et al. 2022, times min(pp, m) micro-batches in flight under 1F1B) and their total."""
    _check_degrees(shape, dp, pp, tp)
    psi = rank_params(shape, pp, tp)
    params = zero_memory_bytes(psi, dp, zero_stage, k=0, bytes_param=2, bytes_grad=0)
    grads = zero_memory_bytes(psi, dp, zero_stage, k=0, bytes_param=0, bytes_grad=2)
    optimizer = zero_memory_bytes(psi, dp, zero_stage, k=k, bytes_param=0, bytes_grad=0)
    in_flight = inflight_formula("1f1b", pp, micro_batches, 0)
    layers = shape.n_layers // pp
    activations = in_flight * layers * activation_bytes_per_layer(
        shape, seq, micro_batch, tp, recompute, sequence_parallel)
    out = {"parameters": params, "gradients": grads, "optimizer": optimizer,
           "activations": activations}
    out["total"] = sum(out.values())
    return out


def decode_memory(shape: ModelShape, tp: int, pp: int = 1, batch: int = 1, context: int = 4096,
                  bytes_per: float = 2) -> dict[str, float]:
    """Bytes per GPU for decoding: weights (bytes_per each; embedding and head split by
    vocabulary) and the KV cache of `batch` sequences of `context` tokens (2·L·kv·d·bytes per
    token, its KV heads split tp ways, at least one per rank)."""
    _check_degrees(shape, 1, pp, tp)
    weights = shape.params() * bytes_per / (tp * pp)
    kv_share = max(shape.n_kv_heads // tp, 1) / shape.n_kv_heads
    kv = shape.kv_bytes_per_token(bytes_per) * kv_share * batch * context / pp
    return {"weights": weights, "kv_cache": kv, "total": weights + kv}

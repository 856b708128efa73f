"""Activation memory of a transformer block under tensor parallelism: measured and predicted.

What backward needs is what the forward pass saves for it (`ctx.save_for_backward`, the inputs
of each product, the statistics of each norm). `saved_bytes` measures it the way
`tplab.pp.executor` does: a `torch.autograd.graph.saved_tensors_hooks` pack hook sees every
tensor autograd keeps; parameters and buffers (the model's own state) are left out, and a
storage kept by several operations (a view, or one input saved by q, k and v alike) counts once.

Two predictions to hold it against:

* `block_terms`: this course's block (`tplab.layers.Block`: RMSNorm, grouped-query attention with
  PyTorch's fused attention kernel, SwiGLU, fp32, no dropout), derived term by term: what every
  rank keeps whole (replicated) and what each keeps 1/t of (sharded);
* `korthikanti`: the published per-layer formula for a GPT layer (16-bit, dropout, the attention
  matrix materialised), sbh(10 + 24/t + 5as/(ht)) bytes, and with sequence parallelism
  sbh(34 + 5as/h)/t (Korthikanti et al. 2022, arXiv:2205.05198).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["saved_bytes", "block_terms", "korthikanti", "fit_replicated_sharded"]


def saved_bytes(module: nn.Module, *args, **kwargs) -> tuple[int, object]:
    """(bytes saved for backward by `module(*args, **kwargs)`, its output).

    Each storage counts once, whole (what autograd keeps alive); parameters and buffers of
    `module` are not activations and are left out."""
    state = {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()]}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in state:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(*args, **kwargs)
    return sum(seen.values()), out


def block_terms(b: int, s: int, h: int, n_heads: int, head_dim: int, ffn: int,
                bytes_per: int = 4) -> dict[str, int]:
    """Bytes `tplab.layers.Block` saves for backward, split into what every TP rank keeps whole
    ("replicated") and what t ranks share ("sharded": each keeps 1/t of it).

    Replicated, per RMSNorm (two per block): its input x, x/rms(x) (for the weight's gradient),
    1/rms(x) (one number per token), and its output, the whole input of the column-parallel
    projections: 3 b·s·h + b·s numbers, twice.
    Sharded, attention: q, and k, v expanded to one per query head (what the attention kernel
    gets), its output (which o's input shares), and its log-sum-exp per head and token
    (4 b·s·heads·d + b·heads·s); no s×s matrix: the fused kernel recomputes it in backward.
    Sharded, MLP: gate's and up's outputs, silu(gate) and the product (down's input): 4 b·s·ffn.
    """
    replicated = 2 * (3 * b * s * h + b * s)
    attention = 4 * b * s * n_heads * head_dim + b * n_heads * s
    mlp = 4 * b * s * ffn
    return {"replicated": replicated * bytes_per, "sharded": (attention + mlp) * bytes_per,
            "attention": attention * bytes_per, "mlp": mlp * bytes_per}


def korthikanti(s: int, b: int, h: int, a: int, t: int = 1,
                sequence_parallel: bool = False) -> dict[str, float]:
    """Activation bytes per layer and rank of a GPT layer (16-bit, with dropout), as published:
    tensor parallel sbh(10 + 24/t + 5as/(ht)), of which 10·sbh replicated; with sequence
    parallelism sbh(34 + 5as/h)/t, nothing replicated (arXiv:2205.05198)."""
    sbh = s * b * h
    if sequence_parallel:
        return {"replicated": 0.0, "sharded": sbh * (34 + 5 * a * s / h) / t}
    return {"replicated": 10.0 * sbh, "sharded": sbh * (24 + 5 * a * s / h) / t}


def fit_replicated_sharded(ts: list[int], measured: list[float]) -> tuple[float, float]:
    """Least-squares R and S in measured(t) = R + S/t."""
    design = torch.tensor([[1.0, 1.0 / t] for t in ts], dtype=torch.float64)
    y = torch.tensor(measured, dtype=torch.float64).unsqueeze(1)
    solution = torch.linalg.lstsq(design, y).solution.squeeze(1)
    return float(solution[0]), float(solution[1])

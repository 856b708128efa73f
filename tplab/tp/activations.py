"""Activation memory of a transformer block under tensor parallelism: measured and predicted.

What backward needs is what the forward pass saves for it (`ctx.save_for_backward`, the inputs
of each product, the statistics of each norm). `SavedBytes` counts it, and lesson 05's
executor (`tplab.pp.executor`) uses the same counter: a `torch.autograd.graph.saved_tensors_hooks`
pack hook sees every tensor autograd keeps; parameters and buffers (the model's own state) are
left out, and memory kept by several operations (a view and its base, or one input saved by q,
k and v alike) counts once. `saved_bytes` runs a module under it.

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

__all__ = ["SavedBytes", "saved_bytes", "block_terms", "korthikanti", "fit_replicated_sharded"]


def _reach(t: torch.Tensor) -> tuple[int, int]:
    """The bytes of its storage a tensor reaches: from its first element to its last."""
    if t.numel() == 0:
        return 0, 0
    first = t.storage_offset()
    last = first + sum((n - 1) * stride for n, stride in zip(t.shape, t.stride()))
    return first * t.element_size(), (last + 1) * t.element_size()


class SavedBytes:
    """`with SavedBytes(exclude=model.parameters()) as saved:` forward `;` then `saved.nbytes`:
    the bytes autograd saved for backward inside the block.

    It counts memory, not tensors: a saved tensor counts the part of its storage it reaches (a
    micro-batch that is a view of the batch counts as its own rows, an expanded tensor as what it
    really holds), and bytes reached by several saved tensors count once. Tensors sharing a
    storage with `exclude` (parameters, buffers: the model's state, not activations) are left out.
    """

    def __init__(self, exclude=()):
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.spans: dict[int, list[tuple[int, int]]] = {}

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage().data_ptr()
        if storage not in self.exclude:
            self.spans.setdefault(storage, []).append(_reach(t))
        return t

    @property
    def nbytes(self) -> int:
        total = 0
        for spans in self.spans.values():   # the union of each storage's spans
            end = 0
            for a, b in sorted(spans):
                total += max(0, b - max(a, end))
                end = max(end, b)
        return total

    def __enter__(self) -> SavedBytes:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


def saved_bytes(module: nn.Module, *args, **kwargs) -> tuple[int, object]:
    """(bytes saved for backward by `module(*args, **kwargs)`, its output), by `SavedBytes`;
    the module's parameters and buffers are not activations and are left out."""
    with SavedBytes(exclude=[*module.parameters(), *module.buffers()]) as saved:
        out = module(*args, **kwargs)
    return saved.nbytes, out


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

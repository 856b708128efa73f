"""Random numbers across tensor-parallel ranks: which dropout masks must match, which must not.

Dropout in the *replicated* region (after g's all-reduce: the residual stream) acts on a tensor
every rank holds whole: each rank must draw the **same** mask, or the replicas of the hidden
state stop being replicas. Dropout in the *split* region (a rank's own FFN features or heads)
acts on a shard: each rank must draw a **different** mask, or shard r's mask repeats shard 0's,
which dense dropout over the whole tensor would never do.

Megatron-LM keeps two generators that matter for TP (`megatron/core/tensor_parallel/random.py`):
`model_parallel_cuda_manual_seed(seed)` seeds the default generator with `seed` on every
tensor-parallel rank, and registers a "model-parallel-rng" state seeded with
seed + 2718 + tp_rank in an RNG states tracker; code in the split region runs inside
`get_cuda_rng_tracker().fork()`, which swaps that state in and back out (and keeps its
progress). `RNGStatesTracker` is the same on the CPU generator. (Megatron also registers a
data-parallel state and an expert-parallel one, seed + 1024 + 100·ep_rank + etp_rank, and the
seed it is handed already includes 100·pp_rank; neither matters inside one TP group.)
"""
from __future__ import annotations

import contextlib

import torch

__all__ = ["RNGStatesTracker", "model_parallel_manual_seed", "MODEL_PARALLEL", "OFFSET"]

MODEL_PARALLEL = "model-parallel-rng"
OFFSET = 2718  # Megatron-LM's: "any POSITIVE value will work"


class RNGStatesTracker:
    """Named generator states; `fork(name)` runs its block on that state, then restores the
    default one (the named state keeps what the block drew, so the next fork continues)."""

    def __init__(self):
        self.states: dict[str, torch.Tensor] = {}

    def add(self, name: str, seed: int) -> None:
        if name in self.states:
            raise ValueError(f"RNG state {name!r} already exists")
        default = torch.get_rng_state()
        torch.manual_seed(seed)
        self.states[name] = torch.get_rng_state()
        torch.set_rng_state(default)

    @contextlib.contextmanager
    def fork(self, name: str = MODEL_PARALLEL):
        if name not in self.states:
            raise KeyError(f"RNG state {name!r} was never added")
        default = torch.get_rng_state()
        torch.set_rng_state(self.states[name])
        try:
            yield
        finally:
            self.states[name] = torch.get_rng_state()
            torch.set_rng_state(default)


def model_parallel_manual_seed(seed: int, tp_rank: int) -> RNGStatesTracker:
    """Seed as Megatron-LM does: the default generator with `seed` (the same on every TP rank:
    the replicated region), and a tracked state with seed + 2718 + tp_rank (the split region)."""
    torch.manual_seed(seed)
    tracker = RNGStatesTracker()
    tracker.add(MODEL_PARALLEL, seed + OFFSET + tp_rank)
    return tracker

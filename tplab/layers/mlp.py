"""The SwiGLU MLP of Llama, Mistral and SmolLM, written once (dense and tensor-parallel)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from tplab.layers.fuse import convert_fused, fuse_weights, project


class SwiGLU(nn.Module):
    """down( silu(gate(x)) * up(x) ).

    The constructor makes a dense MLP with fresh weights; `tplab.tp.ParallelSwiGLU` is this
    class holding a rank's FFN features (gate and up by rows, down by columns), differing only
    in `enter` (f) and in its down projection summing the ranks' partial outputs (g).
    """

    def __init__(self, hidden: int, ffn: int, bias: bool = False):
        super().__init__()
        self.attach(nn.Linear(hidden, ffn, bias=bias), nn.Linear(hidden, ffn, bias=bias),
                    nn.Linear(ffn, hidden, bias=bias))

    def attach(self, gate, up, down) -> None:
        """Use these projections (dense, or one rank's shards)."""
        self.gate, self.up, self.down, self.fused = gate, up, down, None

    def fuse(self) -> None:
        """Inference: gate and up as one product (see `tplab.layers.fuse`)."""
        self.fused = fuse_weights(self.gate, self.up)

    def _apply(self, fn, recurse=True):  # .to(device, dtype): the fused weight follows
        return convert_fused(self, super()._apply, fn, recurse, self.gate, self.up)

    def enter(self, x):
        """Where the whole input enters the split features: nothing on one device (f, on ranks)."""
        return x

    def forward(self, x):
        gate, up = project(self.enter(x), (self.gate, self.up), self.fused)
        return self.down(F.silu(gate) * up)

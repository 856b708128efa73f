"""Several bias-free projections of the same input as one matrix product (inference only).

Why: decoding a token with SmolLM2 makes 211 matrix products unfused and 121 fused (q|k|v as
one, gate|up as one), and on a CPU each product has a fixed cost whatever its size. Dense and
tensor-parallel layers fuse alike: a rank fuses its own shards.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def fuse_weights(*linears) -> tuple[torch.Tensor, list[int]] | None:
    """One weight for several bias-free layers that read the same input.

    Their weights become views of the fused one, so memory is not doubled and the parameters
    still read as before. Returns (fused weight, each layer's output size), or None — nothing
    fused — for layers with a bias or weights that train.
    """
    if any(lin.bias is not None or lin.weight.requires_grad for lin in linears):
        return None
    sizes = [lin.weight.shape[0] for lin in linears]
    fused = torch.cat([lin.weight.detach() for lin in linears])
    for lin, part in zip(linears, fused.split(sizes)):
        lin.weight = nn.Parameter(part, requires_grad=False)
    return fused, sizes


def convert_fused(module: nn.Module, apply, fn, recurse: bool, *linears) -> nn.Module:
    """`module._apply` for a module holding `linears` fused: convert, then fuse them again.

    Why: `.to(device, dtype)` converts each parameter on its own, so the fused projections'
    weights stop being views of the fused weight, and it would stay behind (on the CPU, in
    float32) while they moved. Concatenating the converted ones again makes it follow them.
    """
    apply(fn, recurse)
    if module.fused is not None:
        module.fused = fuse_weights(*linears)
    return module


def project(x, linears, fused):
    """Each layer of `linears` applied to x: with one product if they were fused."""
    if fused is None:
        return [lin(x) for lin in linears]
    return F.linear(x, fused[0]).split(fused[1], dim=-1)

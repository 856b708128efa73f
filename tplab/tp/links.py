"""Why tensor parallelism stays inside an NVLink domain (one server): its per-layer all-reduces
on each kind of link.

Per layer and training step a TP rank all-reduces its [b, s, h] activation 4 times (2 forward,
2 backward; Narayanan et al. 2021, arXiv:2104.04473); a ring all-reduce of N bytes makes each
rank send 2(t-1)/t·N, so at a link's per-direction bandwidth B that takes 2(t-1)/t·N/B. The
layer's matrix products, 6 × parameters × tokens FLOPs for forward and backward (plus the
attention scores, 12·b·s²·h, counted without a causal mask as Narayanan et al. do; causal
kernels skip about half), shrink as 1/t. `LINKS` holds the published per-GPU bandwidths (from
`tplab.hardware`, where their sources are); the numbers are peaks, so both times are lower bounds.
"""
from __future__ import annotations

import dataclasses

from tplab import hardware

__all__ = ["Link", "LINKS", "H100_BF16_FLOPS", "Shape", "LLAMA2_70B", "layer_times"]


@dataclasses.dataclass(frozen=True)
class Link:
    name: str
    bytes_per_s: float   # per GPU, per direction
    source: str


LINKS = [  # the figures and their sources: tplab.hardware
    Link("NVLink 4 (inside a DGX H100)", hardware.NVLINK4_BYTES_PER_S,
         "NVIDIA H100 Tensor Core GPU datasheet: NVLink 900 GB/s, i.e. 450 GB/s each way"),
    Link("PCIe 5.0 x16", hardware.PCIE5_X16_BYTES_PER_S,
         "PCI-SIG PCIe 5.0: 32 GT/s per lane × 16 lanes × 128/130 coding / 8 = 63 GB/s each way"),
    Link("InfiniBand NDR (one 400 Gb/s NIC per GPU)", hardware.IB_NDR_BYTES_PER_S,
         "NVIDIA DGX H100 datasheet: 8 × ConnectX-7 400 Gb/s; 400 Gb/s = 50 GB/s"),
]
H100_BF16_FLOPS = hardware.H100_BF16_FLOPS  # dense bf16 peak, H100 SXM (NVIDIA H100 datasheet)


@dataclasses.dataclass(frozen=True)
class Shape:
    name: str
    hidden: int
    heads: int
    kv_heads: int
    ffn: int

    def layer_params(self) -> int:
        d = self.hidden // self.heads
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * self.kv_heads * d
        return attention + 3 * self.hidden * self.ffn


# Touvron et al. 2023 (arXiv:2307.09288), as in gpt-fast's config: 80 layers of these
LLAMA2_70B = Shape("Llama-2-70B", hidden=8192, heads=64, kv_heads=8, ffn=28672)


def layer_times(shape: Shape, s: int, b: int, t: int, bytes_per: int = 2,
                flops: float = H100_BF16_FLOPS) -> dict:
    """One layer, one training step, on one of t ranks: the all-reduce bytes each rank sends,
    the seconds they take on each link of `LINKS`, and the compute seconds at peak FLOP/s."""
    n = b * s * shape.hidden * bytes_per                     # one all-reduce's payload
    sent = 4 * 2 * (t - 1) / t * n                            # 4 ring all-reduces
    work = 6 * shape.layer_params() * b * s + 12 * b * s * s * shape.hidden
    return {"payload": n, "sent": sent, "compute_s": work / t / flops,
            "link_s": {link.name: sent / link.bytes_per_s for link in LINKS}}

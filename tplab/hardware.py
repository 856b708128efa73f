"""The published hardware figures the course prices things with, each once, with its source.

Why one module: the same peak FLOP/s and link bandwidths appear in lessons 01-04, in exercise
checks and in pictures; written out in each place they drift apart. Every figure here is a
vendor's or a standard's *peak* (dense, no sparsity), so times computed from them are lower
bounds. Bandwidths are bytes per second **per GPU, per direction** unless the name says
otherwise; where the source quotes bits or both directions, both numbers are kept and
`tests/test_hardware.py` checks that they agree.
"""
from __future__ import annotations

__all__ = [
    "H100_BF16_FLOPS", "H100_HBM_BYTES_PER_S", "H100_MEMORY_BYTES",
    "H200_HBM_BYTES_PER_S", "H200_MEMORY_BYTES",
    "A100_BF16_FLOPS", "A100_HBM_BYTES_PER_S", "A100_MEMORY_BYTES",
    "NVLINK4_BIDIRECTIONAL_BYTES_PER_S", "NVLINK4_BYTES_PER_S",
    "NVLINK3_BIDIRECTIONAL_BYTES_PER_S", "NVLINK3_BYTES_PER_S",
    "IB_NDR_BITS_PER_S", "IB_NDR_BYTES_PER_S",
    "PCIE5_TRANSFERS_PER_S", "PCIE5_LANES", "PCIE5_ENCODING", "PCIE5_X16_BYTES_PER_S",
]

# --- H100 SXM5 80 GB -----------------------------------------------------------------------
# source: NVIDIA H100 Tensor Core GPU datasheet, H100 SXM column: "BF16 Tensor Core 1,979
# teraFLOPS*" with "* With sparsity"; dense is half: 989 TFLOP/s (989.4 in the H100 whitepaper)
H100_BF16_FLOPS = 989e12
# source: same datasheet, "GPU memory bandwidth 3.35TB/s" (HBM3)
H100_HBM_BYTES_PER_S = 3.35e12
# source: same datasheet, "GPU memory 80GB" (nvidia-smi shows the HBM as 80 GiB less what the
# driver reserves; the datasheet's decimal 80e9 is what the course's sums use)
H100_MEMORY_BYTES = 80e9

# --- H200 SXM 141 GB (the same compute as the H100 SXM) ------------------------------------
# source: NVIDIA H200 Tensor Core GPU datasheet: "GPU memory 141GB", "bandwidth 4.8TB/s"
H200_HBM_BYTES_PER_S = 4.8e12
H200_MEMORY_BYTES = 141e9

# --- A100 SXM4 80 GB (gpt-fast's published numbers were taken on these) -----------------------
# source: NVIDIA A100 Tensor Core GPU datasheet, A100 80GB SXM column: "BF16 Tensor Core 312
# TFLOPS | 624 TFLOPS*" (* with sparsity), "GPU Memory Bandwidth 2,039GB/s", "GPU Memory 80GB HBM2e"
A100_BF16_FLOPS = 312e12
A100_HBM_BYTES_PER_S = 2.039e12
A100_MEMORY_BYTES = 80e9

# --- links between GPUs --------------------------------------------------------------------
# source: H100 datasheet, "NVIDIA NVLink: 900GB/s" (fourth-generation NVLink, 18 links of
# 50 GB/s counting both directions): 450 GB/s each way per GPU
NVLINK4_BIDIRECTIONAL_BYTES_PER_S = 900e9
NVLINK4_BYTES_PER_S = 450e9
# source: A100 datasheet, "NVLink: 600GB/s" (third generation, both directions): 300 GB/s each way
NVLINK3_BIDIRECTIONAL_BYTES_PER_S = 600e9
NVLINK3_BYTES_PER_S = 300e9
# source: NVIDIA DGX H100 datasheet, "8x single-port NVIDIA ConnectX-7 VPI, 400Gb/s InfiniBand"
# (NDR): one 400 gigaBIT/s NIC per GPU, each way, so 50 GB/s per GPU per direction
IB_NDR_BITS_PER_S = 400e9
IB_NDR_BYTES_PER_S = 50e9
# source: PCI-SIG, PCI Express Base Specification 5.0: 32 GT/s per lane, 128b/130b encoding;
# an x16 slot moves 32e9 · 16 · 128/130 / 8 ≈ 63.0 GB/s each way (before protocol overhead)
PCIE5_TRANSFERS_PER_S = 32e9
PCIE5_LANES = 16
PCIE5_ENCODING = 128 / 130
PCIE5_X16_BYTES_PER_S = 63e9

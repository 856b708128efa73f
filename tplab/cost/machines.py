"""The machines the cost model prices, and the few assumptions it makes about them, each once.

Why here and not in `tplab.hardware`: that module holds vendors' *peak* figures; a prediction
also needs how much of a peak real software reaches. The model makes exactly two such
assumptions, each cited, used for every case alike and never fitted to a case it validates:

* `DECODE_BANDWIDTH_EFFICIENCY`: decoding reads weights at 68.5 % of the HBM peak. Source:
  gpt-fast's README (pytorch-labs/gpt-fast, the same 8×A100-80GB at 330 W as its 70B figures)
  reports Llama-2-7B bf16 on ONE GPU at 104.9 tok/s and "1397.31 GB/s": 1397.31 / 2039 = 0.685.
  One GPU, no communication: a calibration of the memory system, not of the 70B TP cases.
* `TRAINING_FLOPS_EFFICIENCY`: training matrix products reach 50 % of the datatype's dense
  peak. Source: Narayanan et al. 2021 (arXiv:2104.04473, Table 1): Megatron-LM, the engine
  under NeMo, sustains 44-52 % of A100 BF16 peak from 1.7B to 1T parameters (52 % at 1T).
  That citation is for A100 BF16; applied to H100 FP8 it is an ASSUMPTION, not a citation
  (NeMo's own Llama-2-70B FP8 figure, 768 TFLOP/s per GPU, is 38.8 % of the 1979 dense peak).

Collectives on NVLink use NCCL's own cost model (NVIDIA/nccl, src/graph/tuning.cc: ring
all-reduce latency = baseLat + 2(n-1)·hwLat; ring/LL protocol, the one NCCL picks for small
messages: baseLat 3.6 µs, NVLink hwLat 0.47 µs per step) with bandwidth from nccl-tests on
8×H100 (~370 GB/s bus bandwidth, nccl-tests issue #212; A100: 235 GB/s, the cap tuning.cc
applies to compute capability 8.0). A simplification for gpt-fast's box: its 8×A100 is a
hybrid cube mesh and gpt-fast runs with ENABLE_INTRA_NODE_COMM (torch's own intra-node
all-reduce for small messages), while the model prices NCCL's ring with the LL protocol's
latency but the Simple protocol's bandwidth; TP8, the most latency-exposed case, is therefore
the one this makes most optimistic. "This machine" is fitted by `tplab.cost.measure`.
"""
from __future__ import annotations

import dataclasses

from tplab import hardware

__all__ = ["Hardware", "A100_330W", "H100", "DECODE_BANDWIDTH_EFFICIENCY",
           "TRAINING_FLOPS_EFFICIENCY", "H100_FP8_FLOPS", "NCCL_BASE_LATENCY_S",
           "NCCL_NVLINK_STEP_LATENCY_S"]

DECODE_BANDWIDTH_EFFICIENCY = 1397.31e9 / hardware.A100_HBM_BYTES_PER_S   # gpt-fast, see above
TRAINING_FLOPS_EFFICIENCY = 0.50                                        # Narayanan et al. 2021
# NVIDIA H100 datasheet, SXM: "FP8 Tensor Core 3,958 teraFLOPS*" (* with sparsity): dense 1979
H100_FP8_FLOPS = 1979e12
# NVIDIA/nccl src/graph/tuning.cc: baseLat[Ring][LL] = 3.6 µs, hwLat[NVLINK][Ring][LL] = 0.47 µs
NCCL_BASE_LATENCY_S = 3.6e-6
NCCL_NVLINK_STEP_LATENCY_S = 0.47e-6
# nccl-tests issue #212: all_reduce_perf on 8×H100 SXM ~370 GB/s bus bandwidth, large messages
H100_NCCL_BUS_BYTES_PER_S = 370e9
# NVIDIA/nccl src/graph/tuning.cc: "if (compCap80) busBw = std::min(busBw, 235.0f)" (A100)
A100_NCCL_BUS_BYTES_PER_S = 235e9


@dataclasses.dataclass(frozen=True)
class Hardware:
    """One accelerator and its links. Times: `flops` and `bytes_per_s` are peaks (the model
    multiplies them by the efficiencies above); a collective over n ranks costs
    `base_latency_s` + steps·`alpha` + bytes·`beta` (tplab.comm.cost's ring formulas plus
    NCCL's fixed start). `inter_*`: the link between servers (DP and PP across nodes)."""
    name: str
    flops: float                  # dense peak, training datatype (bf16 unless noted)
    bytes_per_s: float            # memory read bandwidth, peak
    memory_bytes: float
    alpha: float                  # seconds per ring step inside a server
    beta: float                   # seconds per byte, inside a server (1 / bus bandwidth)
    base_latency_s: float = 0.0
    inter_beta: float | None = None
    fp8_flops: float | None = None
    gpus_per_server: int = 8
    decode_efficiency: float = DECODE_BANDWIDTH_EFFICIENCY
    flops_efficiency: float = TRAINING_FLOPS_EFFICIENCY
    source: str = ""

    def link_beta(self, crosses_servers: bool) -> float:
        return self.inter_beta if crosses_servers and self.inter_beta else self.beta


A100_330W = Hardware(
    "8×A100-80GB SXM (330 W, gpt-fast)", hardware.A100_BF16_FLOPS, hardware.A100_HBM_BYTES_PER_S,
    hardware.A100_MEMORY_BYTES, NCCL_NVLINK_STEP_LATENCY_S, 1 / A100_NCCL_BUS_BYTES_PER_S,
    NCCL_BASE_LATENCY_S, 1 / hardware.IB_NDR_BYTES_PER_S,
    source="NVIDIA A100 datasheet; NCCL tuning.cc; gpt-fast README (330 W)")
H100 = Hardware(
    "DGX H100 (H100-80GB SXM)", hardware.H100_BF16_FLOPS, hardware.H100_HBM_BYTES_PER_S,
    hardware.H100_MEMORY_BYTES, NCCL_NVLINK_STEP_LATENCY_S, 1 / H100_NCCL_BUS_BYTES_PER_S,
    NCCL_BASE_LATENCY_S, 1 / hardware.IB_NDR_BYTES_PER_S, fp8_flops=H100_FP8_FLOPS,
    source="NVIDIA H100 and DGX H100 datasheets; NCCL tuning.cc; nccl-tests #212")

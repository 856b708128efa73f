""""This machine" as a row of the hardware table: its rates fitted from measurements.

Why fit rather than look up: a CPU's achievable FLOP/s and bandwidth depend on the shapes, the
threads and who else shares the cores, and gloo's α and β on the kernel's loopback. So the model
takes, from one launch of 2 ranks doing it at the same time (as the workloads will):

* matmul FLOP/s of training: a layer's three products for a [64, 1024] batch and a 1024×1024
  weight (the workloads' shape): forward x·Wᵀ, input gradient g·W, weight gradient gᵀ·x, 6·B·k·n
  FLOPs in all (the weight gradient's inner size is the batch, 64: slower per FLOP on a CPU);
* memory read bandwidth: a one-token F.linear over a 72 MiB [32768, 576] weight (decoding's
  access pattern, SmolLM2's width, too big for any cache);
* AdamW: seconds per parameter of `torch.optim.AdamW.step` on a 1M-parameter tensor;
* α, β of two all-reduce routes: tplab.comm's shared-memory one (what TP decoding uses) and
  torch.distributed's gloo (DDP, ZeRO, pipelines), by `tplab.comm.cost.fit_alpha_beta` on the
  ring model over 1 KiB .. 4 MiB (Thakur, Rabenseifner & Gropp 2005).

Each figure is the median of repeated calls (`tplab.timing`), the slower rank's.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.distributed as dist
import torch.nn.functional as F

from tplab.comm.cost import fit_alpha_beta, ring_all_reduce_time
from tplab.cost.machines import Hardware
from tplab.timing import median, time_calls

__all__ = ["MachineFit", "fit_this_machine", "SIZES"]

SIZES = (2**10, 2**14, 2**18, 2**20, 2**22)   # all-reduce bytes fitted over
MATMUL_SHAPE = (64, 1024, 1024)               # rows, in, out


@dataclasses.dataclass(frozen=True)
class MachineFit:
    flops: float
    bytes_per_s: float
    adamw_s_per_param: float
    shm: tuple[float, float]      # (α, β) of tplab.comm's shared-memory all-reduce
    gloo: tuple[float, float]     # (α, β) of torch.distributed's gloo all-reduce

    def hardware(self, route: str = "gloo") -> Hardware:
        """This machine as a `Hardware` row: measured rates are achieved rates (efficiency 1)."""
        alpha, beta = getattr(self, route)
        return Hardware(f"this machine (2 ranks, {route} all-reduce)", self.flops,
                        self.bytes_per_s, 0.0, alpha, beta, decode_efficiency=1.0,
                        flops_efficiency=1.0, gpus_per_server=2,
                        source="fitted by tplab.cost.measure in this run")


def _fit_worker(sizes, repeats):
    from tplab import comm
    barrier = dist.barrier
    rows, k, n = MATMUL_SHAPE
    x, w, g = torch.randn(rows, k), torch.randn(n, k), torch.randn(rows, n)

    def layer_products():
        F.linear(x, w), g @ w, g.t() @ x
    matmul_s = median(time_calls(layer_products, repeats, warmup=2, before=barrier))
    big, one = torch.randn(32768, 576), torch.randn(1, 576)
    read_s = median(time_calls(lambda: F.linear(one, big), repeats, warmup=2, before=barrier))
    p = torch.nn.Parameter(torch.randn(2**20))
    p.grad = torch.randn(2**20)
    adam = torch.optim.AdamW([p], lr=1e-3)
    adam_s = median(time_calls(adam.step, repeats, warmup=2, before=barrier))
    routes = {}
    for route, reduce in (("shm", comm.all_reduce), ("gloo", dist.all_reduce)):
        routes[route] = []
        for nbytes in sizes:
            t = torch.ones(nbytes // 4)
            routes[route].append(median(time_calls(lambda: reduce(t), repeats, warmup=2,
                                                   before=barrier)))
    return matmul_s, read_s, adam_s, routes


def fit_this_machine(repeats: int = 15, sizes=SIZES) -> MachineFit:
    """Launch 2 ranks, measure, fit; the slower rank's median of each figure."""
    import tplab
    results = tplab.launch(_fit_worker, 2, sizes, repeats, timeout=120)
    matmul_s = max(r[0] for r in results)
    read_s = max(r[1] for r in results)
    adam_s = max(r[2] for r in results)
    rows, k, n = MATMUL_SHAPE
    fits = {}
    for route in ("shm", "gloo"):
        times = [max(r[3][route][i] for r in results) for i in range(len(sizes))]
        fits[route] = fit_alpha_beta(sizes, times, ring_all_reduce_time, n=2)
    return MachineFit(flops=6 * rows * k * n / matmul_s, bytes_per_s=32768 * 576 * 4 / read_s,
                      adamw_s_per_param=adam_s / 2**20, shm=fits["shm"], gloo=fits["gloo"])

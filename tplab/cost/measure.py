""""This machine" as a row of the hardware table: its rates fitted from measurements.

Why fit rather than look up: a CPU's achievable FLOP/s and bandwidth depend on the shapes, the
threads and who else shares the cores, and gloo's α and β on the kernel's loopback. So the model
takes, from one launch of 2 ranks doing it at the same time (as the workloads will):

* training FLOP/s: forward and backward, through autograd, of 8 Linear(1024, 1024) + ReLU
  blocks on a [64, 1024] batch whose input needs a gradient (the workloads' building block):
  each block's three products (x·Wᵀ, g·W, gᵀ·x) are 6·B·k·n FLOPs; the rate includes what a
  real step pays beside them (ReLU, bias gradient, autograd, fresh gradient buffers), and 8
  blocks (32 MB of weights, as much of gradients) do not fit in the caches, as no real model
  does: one block alone, cache-resident, runs ~30 % faster here;
* memory read bandwidth: one token through 30 layers of distinct weights shaped as one TP=2
  rank's share of SmolLM2's ([640, 576] q|k|v, [576, 384] o, [1536, 576] gate|up, [576, 768]
  down; 232 MB fp32, far beyond the caches): decoding's access pattern, F.linear after F.linear;
* one small operator: seconds per call of a tiny op (an add of two [1, 576] rows), dispatch
  through torch's Python layer: the CPU's counterpart of a GPU kernel's launch latency, which
  decoding pays once per operator per token whatever the operator's size;
* AdamW: seconds per parameter of `torch.optim.AdamW.step` on a 1M-parameter tensor;
* α, β of two all-reduce routes: tplab.comm's shared-memory one (what TP decoding uses) and
  torch.distributed's gloo (DDP, ZeRO, pipelines), by `tplab.comm.cost.fit_alpha_beta` on the
  ring model (Thakur, Rabenseifner & Gropp 2005), each over the sizes it carries in the
  workloads (shm: 1 KiB .. 1 MiB, decoding's 2 KiB; gloo: 64 KiB .. 16 MiB, gradients and
  activations): one straight line does not follow gloo from 1 KiB to 16 MiB. gloo's
  reduce-scatter and all-gather (ZeRO's) get fits of their own over 1-16 MiB, on their ring
  formulas: gloo does not run them as rings (its reduce-scatter took 1.7× its all-reduce
  of the same 16 MB here), so the all-reduce's α, β do not price them.

Each figure is the median of repeated calls (`tplab.timing`), the slower rank's.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed import distributed_c10d as _c10d

from tplab.comm.cost import (
    all_gather_time,
    fit_alpha_beta,
    reduce_scatter_time,
    ring_all_reduce_time,
)
from tplab.cost.machines import Hardware
from tplab.timing import median, time_calls

__all__ = ["MachineFit", "fit_this_machine", "median_fit", "SIZES"]

SIZES = {"shm": (2**10, 2**13, 2**16, 2**20),           # all-reduce bytes fitted over: the
         "gloo": (2**16, 2**18, 2**20, 2**22, 2**24)}   # range each route carries here
SHARDED_SIZES = (2**20, 2**22, 2**24)                   # reduce-scatter input, all-gather output
BLOCKS = 8
STREAM = [(640, 576), (576, 384), (1536, 576), (576, 768)] * 30   # (out, in) of each weight
MATMUL_SHAPE = (64, 1024, 1024)               # rows, in, out


@dataclasses.dataclass(frozen=True)
class MachineFit:
    flops: float
    bytes_per_s: float
    adamw_s_per_param: float
    shm: tuple[float, float]      # (α, β) of tplab.comm's shared-memory all-reduce
    gloo: tuple[float, float]     # (α, β) of torch.distributed's gloo all-reduce
    op_s: float = 0.0             # seconds per small operator (dispatch overhead)
    gloo_reduce_scatter: tuple[float, float] = (0.0, 0.0)   # (α, β), reduce_scatter_time's
    gloo_all_gather: tuple[float, float] = (0.0, 0.0)       # (α, β), all_gather_time's

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
    block = torch.nn.Sequential(*[m for _ in range(BLOCKS)
                                  for m in (torch.nn.Linear(k, n), torch.nn.ReLU())])
    x = torch.randn(rows, k, requires_grad=True)

    def forward_backward():
        block.zero_grad()
        x.grad = None
        block(x).sum().backward()
    matmul_s = median(time_calls(forward_backward, repeats, warmup=2, before=barrier))
    weights = [torch.randn(out, inp) for out, inp in STREAM]
    inputs = {inp: torch.randn(1, inp) for _, inp in STREAM}

    def stream():
        for w in weights:
            F.linear(inputs[w.shape[1]], w)
    read_s = median(time_calls(stream, repeats, warmup=2, before=barrier))
    a, b = torch.randn(1, 576), torch.randn(1, 576)

    def hundred_ops():
        for _ in range(100):
            torch.add(a, b)
    op_s = median(time_calls(hundred_ops, repeats, warmup=2, before=barrier)) / 100
    p = torch.nn.Parameter(torch.randn(2**20))
    p.grad = torch.randn(2**20)
    adam = torch.optim.AdamW([p], lr=1e-3)
    adam_s = median(time_calls(adam.step, repeats, warmup=2, before=barrier))
    routes = {}
    for route, reduce in (("shm", comm.all_reduce), ("gloo", dist.all_reduce)):
        routes[route] = []
        for nbytes in sizes[route]:
            t = torch.ones(nbytes // 4)
            routes[route].append(median(time_calls(lambda: reduce(t), repeats, warmup=2,
                                                   before=barrier)))
    for name in ("reduce_scatter", "all_gather"):
        routes[name] = []
        for nbytes in SHARDED_SIZES:
            whole, half = torch.ones(nbytes // 4), torch.ones(nbytes // 8)
            if name == "reduce_scatter":
                def call():
                    _c10d.reduce_scatter_single(half, whole)
            else:
                def call():
                    _c10d.all_gather_single(whole, half)
            routes[name].append(median(time_calls(call, repeats, warmup=2, before=barrier)))
    return matmul_s, read_s, adam_s, routes, op_s


def fit_this_machine(repeats: int = 15, sizes=SIZES) -> MachineFit:
    """Launch 2 ranks, measure, fit; the slower rank's median of each figure."""
    import tplab
    results = tplab.launch(_fit_worker, 2, sizes, repeats, backend="gloo", timeout=120)
    matmul_s = max(r[0] for r in results)
    read_s = max(r[1] for r in results)
    adam_s = max(r[2] for r in results)
    rows, k, n = MATMUL_SHAPE
    fits = {}
    for route in ("shm", "gloo"):
        times = [max(r[3][route][i] for r in results) for i in range(len(sizes[route]))]
        fits[route] = fit_alpha_beta(sizes[route], times, ring_all_reduce_time, n=2)
    for name, model in (("reduce_scatter", reduce_scatter_time), ("all_gather", all_gather_time)):
        times = [max(r[3][name][i] for r in results) for i in range(len(SHARDED_SIZES))]
        fits[name] = fit_alpha_beta(SHARDED_SIZES, times, model, n=2)
    return MachineFit(flops=6 * BLOCKS * rows * k * n / matmul_s,
                      bytes_per_s=sum(o * i for o, i in STREAM) * 4 / read_s,
                      adamw_s_per_param=adam_s / 2**20, shm=fits["shm"], gloo=fits["gloo"],
                      op_s=max(r[4] for r in results),
                      gloo_reduce_scatter=fits["reduce_scatter"],
                      gloo_all_gather=fits["all_gather"])


def median_fit(fits: list[MachineFit]) -> MachineFit:
    """Field by field (α and β apart), the median of several fits: on a shared machine the
    load drifts, so the bench fits once per round, between the workloads' runs."""
    merged = {}
    for field in dataclasses.fields(MachineFit):
        values = [getattr(f, field.name) for f in fits]
        merged[field.name] = (tuple(median(v) for v in zip(*values))
                              if isinstance(values[0], tuple) else median(values))
    return MachineFit(**merged)

"""The cost model against this machine: four real runs on 2 ranks, each beside its prediction.

Why: the same formulas that price 70B on H100s should price what the learner can run, with the
machine's fitted rates (`tplab.cost.measure`) in place of a datasheet's. Each `measure_*` runs
the course's own code under `tplab.launch` and returns the slower rank's median seconds; each
`predict_*` is the formula, nothing measured from that run. The model (MLP of Linear+ReLU,
width 1024) is the shape `measure.MATMUL_SHAPE` fitted the FLOP/s on; `measure_ddp_step` and
`predict_ddp_step` take another width and batch, to check the model OFF the fitted shapes (a
2048-wide MLP: 4× the FLOPs per row, 67 MB of gradients, beyond gloo's fitted 64 KiB-16 MiB).

Terms the CPU model has that the H100 model (`tplab.cost.time`) lacks, and why: one dispatch
time per operator for decoding (a CPU op at decode's sizes costs ~1 µs to dispatch, comparable
to its work; on a GPU kernels are queued asynchronously and the H100 model leaves launch
latency out); DDP's bucket copies and the optimizer's own pass over memory (~ms here against a
step of tens of ms; on an H100 a fraction of a per cent); DP's all-reduce NOT overlapped with
backward (the same 2 cores compute and move gloo's bytes, so nothing runs behind anything).
Every launch asks for gloo: these are CPU tensors, and `tplab.launch` would pick NCCL on a
machine with enough GPUs.

    TP=2 decode  SmolLM2-135M, tplab.models.load_llama_tp: `time.decode_time`, fp32 weights
    DDP step     tplab.dp.DataParallel (25 MB buckets, gloo): 6Ψ·B FLOPs + ring all-reduce of
                 4Ψ bytes (not overlapped: the 2 cores that compute also move the bytes) + the
                 bucket's copies (in, averaged, out) + SGD
    PP step      tplab.pp.run_step, 1F1B, p=2, m=4: (m+p-1)(t_f+t_b) (GPipe's slots,
                 Huang et al. 2019) + 2(p-1) hops of one activation, α+Nβ each
    ZeRO-1 step  tplab.zero.ShardedOptimizer(AdamW): 6Ψ·B FLOPs + reduce-scatter and all-gather
                 of 4Ψ bytes ((n-1)α + (n-1)/n·Nβ each, gloo's own fits) + AdamW on Ψ/n
                 parameters
"""
from __future__ import annotations

import functools

import torch
import torch.distributed as dist
from torch import nn

from tplab.comm.cost import all_gather_time, point_to_point_time, reduce_scatter_time
from tplab.cost.measure import MATMUL_SHAPE, MachineFit
from tplab.cost.model import SMOLLM2_135M
from tplab.cost.time import all_reduce_s, decode_time
from tplab.timing import median, time_calls

__all__ = ["mlp", "measure_tp_decode", "measure_ddp_step", "measure_pp_step",
           "measure_zero1_step", "predict_tp_decode", "predict_ddp_step", "predict_pp_step",
           "predict_zero1_step", "WIDTH", "ROWS"]

ROWS, WIDTH = MATMUL_SHAPE[0], MATMUL_SHAPE[1]   # rows per (micro-)batch, the fitted shape
DEPTH, MICRO = 4, 4    # DDP/ZeRO model depth; pipeline micro-batches (p = 2, two layers each)


def mlp(depth: int, width: int = WIDTH, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), nn.ReLU())])


def _params(depth: int, width: int = WIDTH) -> int:
    return depth * (width * width + width)


# --- TP=2 decode ---------------------------------------------------------------------------
def _decode_worker(tokens):
    from tplab.models.generate import TokenPicker
    from tplab.models.loading import load_llama_tp, vocab_start
    model = load_llama_tp()
    pick = TokenPicker(model.config.vocab_size, vocab_start(model))
    cache = model.new_cache(1, 8 + tokens + 4)
    logits = model(torch.tensor([[1, 504, 3458, 314, 253, 1545, 28, 338]]), cache)
    state = {"logits": logits}

    def one():
        state["logits"] = model(torch.tensor([[pick(state["logits"][0, -1])]]), cache)
    return median(time_calls(one, tokens, warmup=2, before=dist.barrier))


def measure_tp_decode(tokens: int = 16) -> float:
    import tplab
    return max(tplab.launch(_decode_worker, 2, tokens, backend="gloo", timeout=300))


@functools.lru_cache(maxsize=1)
def decode_ops_per_token() -> int:
    """How many aten operators one decoded token of SmolLM2 runs (tplab's dense model, counted
    by a TorchDispatchMode, not timed): a TP rank runs the same ones on smaller shapes."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from tplab.models.loading import load_llama

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.calls += 1
            return func(*args, **(kwargs or {}))
    model = load_llama()
    cache = model.new_cache(1, 8)
    model(torch.tensor([[1, 504, 3458]]), cache)
    with Count():
        model(torch.tensor([[314]]), cache)
    return Count.calls


def predict_tp_decode(fit: MachineFit, context: int = 20) -> float:
    """SmolLM2 on 2 ranks, fp32, tied head split by vocabulary; 2 all-reduces per layer on the
    shared-memory route plus the arg-max's 2 (`TokenPicker`); plus one small operator's
    dispatch time per operator the token runs (`decode_ops_per_token`)."""
    roofline = decode_time(SMOLLM2_135M, 2, fit.hardware("shm"), context=context, bytes_per=4,
                           extra_all_reduces=2)["total_s"]
    return roofline + decode_ops_per_token() * fit.op_s


# --- DDP and ZeRO-1 steps ------------------------------------------------------------------
def _train_worker(kind, steps, width=WIDTH, rows=ROWS):
    model = mlp(DEPTH, width)
    x, y = torch.randn(rows, width), torch.randn(rows, width)
    if kind == "ddp":
        from tplab.dp import DataParallel
        net = DataParallel(model, bucket_mb=25)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    else:
        from tplab.zero import ShardedOptimizer
        net, opt = model, ShardedOptimizer(model.parameters(), torch.optim.AdamW, lr=1e-3)

    def step():
        opt.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        if kind == "ddp":
            net.finish_gradient_sync()
        opt.step()
    return median(time_calls(step, steps, warmup=2, before=dist.barrier))


def measure_ddp_step(steps: int = 10, width: int = WIDTH, rows: int = ROWS) -> float:
    import tplab
    return max(tplab.launch(_train_worker, 2, "ddp", steps, width, rows, backend="gloo",
                            timeout=120))


def measure_zero1_step(steps: int = 10) -> float:
    import tplab
    return max(tplab.launch(_train_worker, 2, "zero1", steps, backend="gloo", timeout=120))


def _compute_s(fit: MachineFit, depth: int, input_grad: bool = False, width: int = WIDTH,
               rows: int = ROWS) -> float:
    """Forward 2·B·k·n and backward 4·B·k·n per layer (Kaplan et al. 2020), less the first
    layer's input gradient (2·B·k·n) when the batch needs none; at the fitted training rate
    (fitted at [64, 1024] × [1024, 1024]: other shapes are priced at the same rate)."""
    products = (6 * depth - (0 if input_grad else 2)) * rows * width * width
    return products / fit.flops


def predict_ddp_step(fit: MachineFit, width: int = WIDTH, rows: int = ROWS) -> float:
    psi = _params(DEPTH, width)
    sgd_s = 3 * 4 * psi / fit.bytes_per_s    # read p and g, write p
    bucket_s = 6 * 4 * psi / fit.bytes_per_s  # into the flat bucket, averaged, back: 3 r+w passes
    reduce_s = all_reduce_s(4 * psi, 2, fit.hardware("gloo"))
    return _compute_s(fit, DEPTH, width=width, rows=rows) + reduce_s + bucket_s + sgd_s


def predict_zero1_step(fit: MachineFit) -> float:
    psi = _params(DEPTH)
    collectives = (reduce_scatter_time(4 * psi, 2, *fit.gloo_reduce_scatter)
                   + all_gather_time(4 * psi, 2, *fit.gloo_all_gather))
    copy_s = 2 * 4 * psi / fit.bytes_per_s   # gradients copied into the flat buffer
    return _compute_s(fit, DEPTH) + collectives + copy_s + fit.adamw_s_per_param * psi / 2


# --- PP step -------------------------------------------------------------------------------
def _pp_worker(steps):
    from tplab.pp import run_step, schedule
    rank = dist.get_rank()
    stage = mlp(DEPTH // 2, seed=rank)
    rows = ROWS
    inputs = [torch.randn(rows, WIDTH) for _ in range(MICRO)] if rank == 0 else None
    targets = [torch.randn(rows, WIDTH) for _ in range(MICRO)] if rank == 1 else None
    actions = schedule("1f1b", 2, MICRO, rank)

    def step():
        stage.zero_grad()
        run_step([stage], actions, inputs, targets, nn.functional.mse_loss,
                 recv_shape=(rows, WIDTH))
    return median(time_calls(step, steps, warmup=2))


def measure_pp_step(steps: int = 10) -> float:
    import tplab
    return max(tplab.launch(_pp_worker, 2, steps, backend="gloo", timeout=120))


def predict_pp_step(fit: MachineFit) -> float:
    p = 2
    slot = _compute_s(fit, DEPTH // 2, input_grad=True)   # t_f + t_b of one stage, one micro
    hop = point_to_point_time(ROWS * WIDTH * 4, 2, *fit.gloo)
    return (MICRO + p - 1) * slot + 2 * (p - 1) * hop

"""Checks of exercises 03 (solutions/03_tensor_parallel_layers.ipynb): the column-then-row MLP
and the vocabulary-parallel cross-entropy, against PyTorch's dense versions.

`run_mlp` and `run_ce` run on every launched rank with the learner's function passed in, with
tplab.tp's own f, g, parallel layers and vocabulary-parallel cross-entropy made to raise (they
are the answer: `forbidden`); the `check_*` functions raise an AssertionError that names the
first wrong value, what came instead, and the likely slip (an all-reduce too many, a missing max
subtraction, an off-by-one at a shard's edge). Every check also counts the communication
exactly: right numbers by the wrong traffic earn nothing.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from tplab import comm
from tplab.checks.forbid import forbidden
from tplab.layers import SwiGLU
from tplab.tp import (
    ColumnParallelLinear,
    ParallelSwiGLU,
    RowParallelLinear,
    copy_to_parallel,
    reduce_from_parallel,
    shard_range,
    vocab_parallel_cross_entropy,
)
from tplab.tp.ops import _CopyToParallel, _ReduceFromParallel
from tplab.tp.vocab import _VocabParallelCrossEntropy

_NOT_YOURS = ("{} called tplab.tp's {}, which is the answer the check compares with: write it "
              "yourself")
MLP_ANSWERS = {f: _NOT_YOURS.format("parallel_mlp", f.__name__.lstrip("_")) for f in (
    copy_to_parallel, reduce_from_parallel, _CopyToParallel, _ReduceFromParallel,
    ColumnParallelLinear, RowParallelLinear, ParallelSwiGLU)}
CE_ANSWERS = {f: _NOT_YOURS.format("VocabParallelCrossEntropy", f.__name__.lstrip("_"))
              for f in (vocab_parallel_cross_entropy, _VocabParallelCrossEntropy)}


def _globals(fn) -> dict:
    # the namespace where the learner's function finds its names (the notebook's, usually)
    return getattr(fn, "__globals__", {})


def rel(a, b):
    # largest element-wise difference, relative to the largest entry of b (inf if a is missing)
    if a is None or tuple(a.shape) != tuple(b.shape):
        return float("inf")
    return float((a.detach() - b.detach()).abs().max() / b.detach().abs().max())


def times(a, b):
    # the factor c that makes c·b closest to a (2.0 when a is twice the reference); None: a missing
    if a is None or tuple(a.shape) != tuple(b.shape):
        return None
    a, b = a.detach().double(), b.detach().double()
    return float((a * b).sum() / (b * b).sum())


def run_mlp(parallel_mlp, hidden=12, ffn=10, b=2, s=5):
    # on every rank: the dense MLP and the learner's parallel_mlp on the same input; errors, traffic
    rank, t = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    dense = SwiGLU(hidden, ffn)
    f0, f1 = shard_range(ffn, t, rank)
    mine = lambda w: w.detach().clone().requires_grad_()  # noqa: E731
    gate_w, up_w = mine(dense.gate.weight[f0:f1]), mine(dense.up.weight[f0:f1])
    down_w = mine(dense.down.weight[:, f0:f1])
    x = torch.randn(b, s, hidden, requires_grad=True)
    dy = torch.randn(b, s, hidden)
    y = dense(x)
    y.backward(dy)
    xp = x.detach().clone().requires_grad_()
    with forbidden(_globals(parallel_mlp), MLP_ANSWERS):
        with comm.trace() as forward:
            yp = parallel_mlp(xp, gate_w, up_w, down_w)
        with comm.trace() as backward:
            yp.backward(dy)
    pairs = {"output": (yp, y), "x grad": (xp.grad, x.grad),
             "gate_w grad": (gate_w.grad, dense.gate.weight.grad[f0:f1]),
             "up_w grad": (up_w.grad, dense.up.weight.grad[f0:f1]),
             "down_w grad": (down_w.grad, dense.down.weight.grad[:, f0:f1])}
    errors = {k: rel(mine_, ref) for k, (mine_, ref) in pairs.items()}
    factors = {k: times(mine_, ref) for k, (mine_, ref) in pairs.items()}
    return errors, factors, forward.summary(), backward.summary()


MLP_HINTS = {
    "output": "The output y is the sum of the ranks' partial outputs: g's forward all-reduces "
              "(sums) them, and f's forward must leave x unchanged (an all-reduce there sums t "
              "copies of x)",
    "x grad": "Each rank holds only the part of x's gradient that flows through its own FFN "
              "features: f's backward must all-reduce (sum) it, and g's backward must return its "
              "gradient unchanged",
    "gate_w grad": "Check g: its backward must return the gradient unchanged (an all-reduce there "
                   "multiplies it by the number of ranks), and f's forward must leave x unchanged",
}
MLP_HINTS["up_w grad"] = MLP_HINTS["down_w grad"] = MLP_HINTS["gate_w grad"]


def check_mlp_numbers(t, rank, errors, factors):
    # raise AssertionError naming the first value that differs from the dense MLP's, and the fix
    bad = [k for k, v in errors.items() if not v < 1e-5]
    if not bad:
        return
    key = bad[0]
    factor = factors[key]
    if factor is None:
        came = "missing (None) or of the wrong shape"
    else:
        came = f"relative error {errors[key]:.2g}"
        if round(factor) >= 2 and abs(factor - round(factor)) < 0.02:  # an all-reduce too many?
            came += f": yours is {round(factor)} × the dense value"
    others = ", ".join(f"{k} {errors[k]:.2g}" for k in bad[1:])
    also = f"; also wrong: {others}" if others else ""
    raise AssertionError(f"{t} rank{'s' if t > 1 else ''}, rank {rank}: {key} should equal the "
                         f"dense MLP's within 1e-5 (relative), came {came}{also}. "
                         f"{MLP_HINTS[key]}.")


def check_mlp_ops(t, rank, forward, backward, nbytes):
    """Exactly one all-reduce of `nbytes` (b·s·h fp32 numbers) forward, in g, and one backward,
    in f: an extra or a missing one (f once per use of x, an all-reduce in g's backward) is
    wrong traffic even where the numbers come out right."""
    one = {"all_reduce": {"calls": 1, "bytes": nbytes}}
    for step, summary in (("forward", forward), ("backward", backward)):
        if summary == one:
            continue
        other = {op: v for op, v in summary.items() if op != "all_reduce"}
        calls = summary.get("all_reduce", {}).get("calls", 0)
        if other:
            why = ("nothing is gathered, broadcast or sent: f and g communicate by all-reduce "
                   "only")
        elif calls == 0:
            why = ("nothing was all-reduced: " + ("g's forward sums the partial outputs"
                                                  if step == "forward" else
                                                  "f's backward sums the gradient of x"))
        elif calls > 1 and step == "backward":
            why = ("apply f once, to x itself, not once per use of x; g's backward returns its "
                   "gradient unchanged: it is already the same on every rank")
        elif calls > 1:
            why = "f's forward returns x unchanged; only g's forward all-reduces"
        else:
            why = "all-reduce the whole tensor, once, in its own dtype (fp32)"
        raise AssertionError(
            f"{t} ranks, rank {rank}: the {step} should make exactly one all-reduce of b·s·h "
            f"fp32 numbers ({nbytes} bytes), the trace shows {summary}: {why}")


def shard_edges(vocab, t):
    # the first and the last id of every rank's range: where an off-by-one in "is it mine?" shows
    ranges = [shard_range(vocab, t, r) for r in range(t)]
    return [i for lo, hi in ranges for i in (lo, hi - 1)]


def run_ce(vocab_parallel_ce, vocab=23, n=12, scale=1.0, seed=0):
    # on every rank: PyTorch's cross-entropy on the full logits, the learner's on this rank's part
    rank, t = dist.get_rank(), dist.get_world_size()
    lo, hi = shard_range(vocab, t, rank)
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, vocab, generator=g) * scale).requires_grad_()
    # chosen, not drawn: every shard's first and last id
    edges = torch.tensor(shard_edges(vocab, t))
    target = torch.cat([edges, torch.randint(0, vocab, (n - len(edges),), generator=g)])
    weights = torch.rand(n, generator=g) + 0.5           # an upstream gradient, one per token
    loss = F.cross_entropy(logits, target, reduction="none")
    loss.backward(weights)
    mine = logits.detach()[:, lo:hi].clone().requires_grad_()
    before = mine.detach().clone()          # the caller's logits must come back untouched
    with forbidden(_globals(vocab_parallel_ce), CE_ANSWERS):
        with comm.trace() as forward:
            lossp = vocab_parallel_ce(mine, target, lo)
        with comm.trace() as backward:
            lossp.backward(weights)
    calls = lambda trace: [(c.op, c.nbytes) for c in trace.calls]  # noqa: E731
    return {"loss": lossp.detach(), "ref_loss": loss.detach(), "grad": mine.grad,
            "ref_grad": logits.grad[:, lo:hi], "target": target, "weights": weights,
            "changed": float((mine.detach() - before).abs().max()),
            "lo": lo, "hi": hi, "top": float(logits.detach().abs().max()),
            "forward": calls(forward), "backward": calls(backward)}


def edge_of(y, vocab, t):
    # ", the first id of rank 1's range 12..22" when id y is at a shard's edge, else ""
    for r in range(t):
        lo, hi = shard_range(vocab, t, r)
        if y in (lo, hi - 1):
            return f", the {'first' if y == lo else 'last'} id of rank {r}'s range {lo}..{hi - 1}"
    return ""


def close(a, b):
    if a is None or tuple(a.shape) != tuple(b.shape):
        return False
    return float((a - b).abs().max()) <= 1e-5 * float(b.abs().max())


GRAD_FORMULA = ("the gradient is grad_loss_i · (softmax(z_i)_v − [v = target_i]): the softmax over "
                "the whole vocabulary (global max and sum), minus 1 at the target's column on the "
                "rank that owns it, times grad_loss")


def check_ce_numbers(t, rank, scale, out, vocab):
    # raise AssertionError naming the first token (and column) whose loss or gradient is wrong
    lo, hi = out["lo"], out["hi"]
    where = f"{t} rank{'s' if t > 1 else ''}, rank {rank} (ids {lo}..{hi - 1}), logits × {scale:g}"
    loss, ref, grad, ref_grad = out["loss"], out["ref_loss"], out["grad"], out["ref_grad"]
    assert isinstance(loss, torch.Tensor) and loss.shape == ref.shape, (
        f"{where}: the forward should return the loss per token, shape {tuple(ref.shape)}, "
        f"came {tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__}")
    assert isinstance(grad, torch.Tensor) and grad.shape == ref_grad.shape, (
        f"{where}: the backward should return the gradient of local_logits, shape "
        f"{tuple(ref_grad.shape)}, came {'None' if grad is None else tuple(grad.shape)}")
    assert out.get("changed", 0.0) == 0.0, (
        f"{where}: your cross-entropy changed the caller's local_logits (by up to "
        f"{out['changed']:.3g}); they should come back as they were passed. Work on new tensors "
        f"(z = local_logits - m, not local_logits.sub_(m)): the caller still holds them")
    for name, x in (("loss", loss), ("logit gradient", grad)):
        assert torch.isfinite(x).all(), (
            f"{where}: your {name} holds inf or nan (logits reach {out['top']:.0f}; PyTorch's "
            f"values are finite). e^z overflows beyond z ≈ 88 in fp32, 709 in fp64: subtract the "
            f"global max m_i (all-reduced with op=dist.ReduceOp.MAX) from the logits before "
            f"exponentiating")
    if not close(loss, ref):
        i = int((loss - ref).abs().argmax())
        y = int(out["target"][i])
        edge = edge_of(y, vocab, t)
        hint = ("a target is the rank's whose range holds it, vocab_start <= target < vocab_start "
                "+ V_r: check that test at the first and the last id of a range" if edge else
                "the loss is log Σ_v e^(z_v − m) − (z_target − m), with the max, the target's "
                "logit and the sum over the whole vocabulary (all-reduced)")
        raise AssertionError(f"{where}: the loss of token {i} (target id {y}{edge}) should be "
                             f"{float(ref[i]):.6g}, came {float(loss[i]):.6g}; {hint}")
    if not close(grad, ref_grad):
        w = out["weights"].unsqueeze(-1)
        onehot = F.one_hot(out["target"], vocab)[:, lo:hi].to(ref_grad.dtype)
        if close(grad * w, ref_grad):
            why = "yours is not multiplied by grad_loss (backward's argument, one number per token)"
        elif close(grad, ref_grad + w * onehot):
            why = "yours lacks the −1 at the target's column (softmax minus one-hot)"
        elif close(grad, ref_grad / w + onehot):
            why = ("yours is the plain softmax: no −1 at the target's column, not multiplied by "
                   "grad_loss")
        else:
            why = GRAD_FORMULA
        i, j = divmod(int((grad - ref_grad).abs().argmax()), grad.shape[1])
        y = int(out["target"][i])
        at = "the target's column" if lo + j == y else f"target {y}{edge_of(y, vocab, t)}"
        raise AssertionError(f"{where}: the gradient of token {i} at id {lo + j} ({at}) should be "
                             f"{float(ref_grad[i, j]):.6g}, came {float(grad[i, j]):.6g}: {why}")


def check_ce_ops(t, rank, out, n):
    """The forward all-reduces [N]-sized tensors only (the max, the target's logit, the sum of
    exponentials: 3 calls at most, 2·N fp64 numbers each and 4·N in all), the backward nothing
    (the softmax is saved in ctx): never the logits, and no sum recomputed in backward."""
    forward, backward = out["forward"], out["backward"]
    wrong = [(op, nbytes) for op, nbytes in forward if op != "all_reduce" or nbytes > 2 * n * 8]
    total = sum(nbytes for _, nbytes in forward)
    assert not wrong and len(forward) <= 3 and total <= 4 * n * 8, (
        f"{t} ranks, rank {rank}: the forward should communicate only all-reduces of [N]-sized "
        f"tensors, 3 at most (the max, the target's logit, the sum of exponentials; at most "
        f"{2 * n * 8} bytes each and {4 * n * 8} in all for N = {n}), the trace shows {forward} "
        f"(op, bytes; {total} in all): never gather or send the logits, and all-reduce each of "
        f"those once")
    assert not backward, (
        f"{t} ranks, rank {rank}: the backward should communicate nothing, the trace shows "
        f"{backward} (op, bytes): the forward has all it needs; save what the gradient uses "
        f"(your columns' softmax, where the target is) in ctx, don't recompute it")

"""Sequence parallelism: the part of a block tensor parallelism leaves whole, split by tokens.

Tensor parallelism splits attention and the MLP, but the norms, the residual additions (and,
in GPT, dropout) run on the whole b×s×h hidden state on every rank: that replicated part is
what keeps a TP rank's activation memory from falling as 1/t (`tplab.tp.activations`). Those
operations act on each token alone, so Korthikanti et al. 2022 (arXiv:2205.05198) split them
along the *sequence*: each rank holds s/t tokens between the TP regions. TP's two operators
become

    TP:        f (identity / all-reduce)         ...  g (all-reduce / identity)
    TP + SP:   g_sp (all-gather / reduce-scatter) ...  ḡ_sp (reduce-scatter / all-gather)

(forward / backward). An all-reduce *is* a reduce-scatter then an all-gather, so the bytes are
the same: a ring all-reduce sends 2(t-1)/t·N per rank, a reduce-scatter and an all-gather
(t-1)/t·N each (N: the whole b×s×h tensor). `ring_sent_bytes` converts a tracer's summary
(which records the tensor handed in: the whole tensor for all-reduce and reduce-scatter, the
s/t shard for all-gather) to those sent bytes.

To keep the column-parallel projections' input at s/t too, `gather_and_project` saves the
shard, not the gathered tensor, and all-gathers it again in backward (the paper's section
4.2.2; Megatron overlaps that all-gather with the weight-gradient product). That extra
all-gather is the only traffic SP adds. The replicated norm weights see 1/t of the tokens, so
their gradients are all-reduced over the TP group (`SequenceParallelRMSNorm`: f on the weight).

The maths is tplab.layers' (RMSNorm, `attend`, SwiGLU), the weights `tplab.tp.blocks`' slices
and the block `tplab.layers.Block`: only the communication differs. Tensors are [b, s, h]: the
sequence is dim 1, and it must divide by t.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from tplab import comm
from tplab.layers import Attention, SwiGLU
from tplab.layers.attention import attend
from tplab.layers.block import Block, RMSNorm
from tplab.tp.activations import block_terms
from tplab.tp.blocks import ParallelAttention, ParallelSwiGLU
from tplab.tp.ops import copy_to_parallel

__all__ = ["scatter_to_sequence", "gather_from_sequence", "reduce_scatter_to_sequence",
           "gather_and_project", "SequenceParallelAttention", "SequenceParallelSwiGLU",
           "SequenceParallelRMSNorm", "parallel_block", "ring_sent_bytes",
           "sequence_parallel_terms"]

SEQ = 1  # the sequence dimension of [b, s, h]


def _check_divides(s: int, t: int) -> None:
    if s % t:
        raise ValueError(f"sequence parallelism splits the sequence evenly: its length {s} must "
                         f"divide by the tensor-parallel degree {t} (pad the sequence, or pick t)")


def _mine(x: torch.Tensor, group) -> torch.Tensor:
    t = dist.get_world_size(group)
    _check_divides(x.shape[SEQ], t)
    return x.chunk(t, SEQ)[dist.get_rank(group)].contiguous()


def _gather(x: torch.Tensor, group) -> torch.Tensor:
    t = dist.get_world_size(group)
    return comm.all_gather(x.contiguous(), [x.shape[SEQ]] * t, dim=SEQ, group=group)


def _reduce_scatter(x: torch.Tensor, group) -> torch.Tensor:
    """My s/t tokens of the sum of every rank's x (reported to tplab.comm.hooks as
    "reduce_scatter", with the bytes of the whole x handed in)."""
    t = dist.get_world_size(group)
    _check_divides(x.shape[SEQ], t)
    if t == 1:
        return x
    rows = x.movedim(SEQ, 0).contiguous()       # the collective splits dim 0
    mine = rows.new_empty((rows.shape[0] // t, *rows.shape[1:]))
    comm.reduce_scatter(mine, rows, group)
    return mine.movedim(0, SEQ).contiguous()


class _Conjugates(torch.autograd.Function):
    """`forward(x, group)` forward, `backward(grad, group)` backward: each op below is a pair."""

    @staticmethod
    def forward(ctx, x, group, forward, backward):
        ctx.group, ctx.conjugate = group, backward
        return forward(x, group)

    @staticmethod
    def backward(ctx, grad):
        return ctx.conjugate(grad, ctx.group), None, None, None


def scatter_to_sequence(x, group=None):
    """Whole sequence -> my s/t tokens (backward: all-gather). Where a replicated tensor (the
    embeddings) enters the sequence-parallel region."""
    return _Conjugates.apply(x, group, _mine, _gather)


def gather_from_sequence(x, group=None):
    """My s/t tokens -> the whole sequence (backward: reduce-scatter, for a gathered tensor that
    feeds split layers, whose input gradients are partial sums). g_sp."""
    return _Conjugates.apply(x, group, _gather, _reduce_scatter)


def reduce_scatter_to_sequence(x, group=None):
    """Partial sums over the whole sequence -> my s/t tokens of their sum (backward:
    all-gather). Where a row-parallel projection's outputs meet: ḡ_sp, TP's all-reduce halved."""
    return _Conjugates.apply(x, group, _reduce_scatter, _gather)


class _GatherProject(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group, *weights):
        ctx.group = group
        ctx.save_for_backward(x, *weights)       # my tokens, not the gathered sequence
        whole = _gather(x, group)
        return tuple(F.linear(whole, w) for w in weights)

    @staticmethod
    def backward(ctx, *grads):
        x, *weights = ctx.saved_tensors
        whole = _gather(x, ctx.group)            # again: the price of saving s/t only
        grad_whole = sum(g @ w for g, w in zip(grads, weights))
        rows = whole.reshape(-1, whole.shape[-1])
        grad_weights = [g.reshape(-1, g.shape[-1]).T @ rows for g in grads]
        return (_reduce_scatter(grad_whole, ctx.group), None, *grad_weights)


def gather_and_project(x, weights, group=None) -> tuple[torch.Tensor, ...]:
    """F.linear(gather_from_sequence(x), w) for each w, saving only x (s/t tokens) for backward
    and gathering it again there: column-parallel projections of a sequence-parallel input."""
    return _GatherProject.apply(x, group, *weights)


def _no_bias(*linears) -> None:
    if any(lin.bias is not None for lin in linears):
        raise ValueError("sequence-parallel blocks take bias-free projections (as Llama's)")


class SequenceParallelAttention(ParallelAttention):
    """`ParallelAttention` (this rank's heads) whose input and output are s/t tokens: q, k and v
    from one `gather_and_project`, `attend` on the whole sequence, o reduce-scattered."""

    def attach(self, q, k, v, o, kv_of_head, head_dim) -> None:
        _no_bias(q, k, v, o)
        super().attach(q, k, v, o, kv_of_head, head_dim)

    def forward(self, x, rope=None, cache=None):
        if cache is not None:
            raise ValueError("sequence parallelism is for training and prefill: no KV cache")
        q, k, v = gather_and_project(x, (self.q.weight, self.k.weight, self.v.weight), self.group)
        b, s, _ = q.shape
        heads = lambda t: t.view(b, s, -1, self.head_dim).transpose(1, 2)  # noqa: E731
        out = attend(heads(q), heads(k), heads(v), self.kv_of_head, rope)
        out = F.linear(out.transpose(1, 2).reshape(b, s, -1), self.o.weight)
        return reduce_scatter_to_sequence(out, self.group)


class SequenceParallelSwiGLU(ParallelSwiGLU):
    """`ParallelSwiGLU` (this rank's FFN features) on s/t tokens in and out."""

    def attach(self, gate, up, down) -> None:
        _no_bias(gate, up, down)
        super().attach(gate, up, down)

    def forward(self, x):
        gate, up = gather_and_project(x, (self.gate.weight, self.up.weight), self.group)
        return reduce_scatter_to_sequence(F.linear(F.silu(gate) * up, self.down.weight),
                                          self.group)


class SequenceParallelRMSNorm(RMSNorm):
    """RMSNorm on my s/t tokens; its weight enters through f, so the weight's gradient (from
    my tokens only) is all-reduced over the group in backward."""

    def __init__(self, dim: int, eps: float = 1e-5, group=None):
        super().__init__(dim, eps)
        self.group = group

    def forward(self, x):
        return F.rms_norm(x, self.weight.shape, copy_to_parallel(self.weight, self.group), self.eps)


def parallel_block(dense: Block, group=None, sequence_parallel: bool = True) -> Block:
    """This rank's `tplab.layers.Block` of a dense one (`Attention` + `SwiGLU`): tensor-parallel,
    and sequence-parallel too by default (then it takes and returns s/t tokens: see
    `scatter_to_sequence`)."""
    if not (isinstance(dense.attn, Attention) and isinstance(dense.mlp, SwiGLU)):
        raise TypeError("parallel_block splits a dense Block of tplab.layers.Attention and SwiGLU")
    hidden, eps = dense.attn_norm.weight.numel(), dense.attn_norm.eps
    attn_cls, mlp_cls = ((SequenceParallelAttention, SequenceParallelSwiGLU) if sequence_parallel
                         else (ParallelAttention, ParallelSwiGLU))
    block = Block(attn_cls.from_dense(dense.attn, group), mlp_cls.from_dense(dense.mlp, group),
                  hidden, eps)
    for name in ("attn_norm", "mlp_norm"):
        norm = SequenceParallelRMSNorm(hidden, eps, group) if sequence_parallel else RMSNorm(
            hidden, eps)
        norm.weight.data.copy_(getattr(dense, name).weight.detach())
        norm.weight.requires_grad_(getattr(dense, name).weight.requires_grad)
        setattr(block, name, norm)
    return block


_RING_SHARE = {"all_reduce": lambda n, t: 2 * (t - 1) * n // t,   # n: the whole tensor
               "reduce_scatter": lambda n, t: (t - 1) * n // t,    # n: the whole tensor
               "all_gather": lambda n, t: (t - 1) * n}             # n: my 1/t shard


def ring_sent_bytes(summary: dict, t: int) -> dict[str, int]:
    """{op: bytes this rank sends on a ring of t} from a `Trace.summary()` (which records the
    bytes handed in to each call); per call, so each call's n divides by t."""
    return {op: _RING_SHARE[op](entry["bytes"], t)
            for op, entry in summary.items() if op in _RING_SHARE}


def sequence_parallel_terms(b: int, s: int, h: int, n_heads: int, head_dim: int, ffn: int,
                            t: int, bytes_per: int = 4) -> dict[str, float]:
    """Bytes one rank saves for backward per `tplab.layers.Block`, from `block_terms`:
    TP keeps the replicated part whole, R + S/t; TP + SP divides it too, (R + S)/t (where t
    divides the heads, the KV heads and the FFN features). Korthikanti's GPT layer alike:
    sbh(10 + 24/t + 5as/(ht)) -> sbh(34 + 5as/h)/t."""
    _check_divides(s, t)
    terms = block_terms(b, s, h, n_heads, head_dim, ffn, bytes_per)
    replicated, sharded = terms["replicated"], terms["sharded"]
    return {"replicated": replicated, "sharded": sharded,
            "tp": replicated + sharded / t, "tp_sp": (replicated + sharded) / t}

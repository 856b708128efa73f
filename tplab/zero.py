"""ZeRO: data parallelism without every rank holding every byte of training state.

Plain data parallelism keeps, on each of the N ranks, the parameters, the gradients and the
optimizer's state of the whole model. With mixed-precision Adam that is 2Ψ bytes of fp16
parameters, 2Ψ of fp16 gradients and KΨ of optimizer state (fp32 master weights, momentum and
variance: K = 12) for Ψ parameters, all identical on every rank. ZeRO (Rajbhandari et al. 2020,
arXiv:1910.02054) shards them: stage 1 the optimizer state, stage 2 the gradients too, stage 3
the parameters too; each rank keeps 1/N of what it shards.

`ShardedOptimizer` is stage 1 written out, as lesson 07 teaches it. The trainable parameters
live in one flat buffer, padded to a multiple of N, each parameter a view of its piece; rank r
owns the r-th of N equal slices. A step is

    reduce-scatter the flat gradient (sum, then / N: the average)   rank r gets its slice only
    optimizer_cls.step() on the slice                               its state: 1/N of the model's
    all-gather the updated slices into the flat buffer              every parameter updated

Communication: a reduce-scatter and an all-gather move what one all-reduce moves (an all-reduce
*is* the two, done by a ring), so ZeRO-1 costs plain DP nothing extra. Slicing the flat buffer
ignores parameter boundaries, which is right for element-wise optimizers (SGD, Adam, AdamW,
...), not for those that look at a whole tensor (LAMB, Adafactor, a gradient-norm clip: those
need a reduction over the ranks first). `torch.distributed.optim.ZeroRedundancyOptimizer`
shards whole parameters instead: any optimizer works, but the shards are uneven.

Collectives: `tplab.comm.reduce_scatter` and `tplab.comm.all_gather_into` (torch.distributed's
`reduce_scatter_single` / `all_gather_single`, which gloo has in torch 2.13), reported to
`tplab.comm.hooks` as "reduce_scatter" and "all_gather" with the bytes of the tensor handed in
(the whole padded gradient; one slice): a tracer counts them.

Beyond stage 1 (not built here): stage 2 also frees the gradient outside the rank's slice as soon
as it is reduce-scattered (DeepSpeed does it bucket by bucket during backward); stage 3 shards
the parameters too, all-gathering each layer's just before its forward and again before its
backward, then freeing them: 1.5x the DP traffic. PyTorch's FSDP2
(`torch.distributed.fsdp.fully_shard`, torch >= 2.6) is stage 3 per module, on DTensor shards.

`zero_memory_bytes` is the paper's formula (its Figure 1 and Table 1).
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist

from tplab import comm
from tplab.checks.forbid import guard  # exercise 07.2's check hides it, even reloaded

__all__ = ["ShardedOptimizer", "optimizer_state_bytes", "zero_memory_bytes"]


def zero_memory_bytes(psi: float, n: int, stage: int, k: float = 12, bytes_param: float = 2,
                      bytes_grad: float = 2) -> float:
    """Bytes of model state (parameters, gradients, optimizer state) per rank under ZeRO.

    `psi` parameters, `n` data-parallel ranks, `stage` 0 (plain DP) to 3, `k` optimizer bytes per
    parameter (12 for mixed-precision Adam: fp32 copy, momentum, variance), `bytes_param` and
    `bytes_grad` per parameter (2: fp16/bf16). With the defaults (Rajbhandari et al. 2020):

        stage 0  (2 + 2 + K)Ψ          stage 2  2Ψ + (2 + K)Ψ/N
        stage 1  4Ψ + KΨ/N             stage 3  (2 + 2 + K)Ψ/N

    The paper's example, Ψ = 7.5e9 on N = 64: 120, 31.4, 16.6 and 1.9 GB (decimal, rounded).
    """
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"stage must be 0, 1, 2 or 3 (ZeRO's stages; 0 is plain data "
                         f"parallelism), got {stage!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (data-parallel ranks) must be an integer >= 1, got {n!r}")
    if psi < 0:
        raise ValueError(f"psi (number of parameters) must be >= 0, got {psi!r}")
    params, grads, optim = bytes_param * psi, bytes_grad * psi, k * psi
    if stage >= 1:
        optim /= n
    if stage >= 2:
        grads /= n
    if stage >= 3:
        params /= n
    return params + grads + optim


class ShardedOptimizer(torch.optim.Optimizer):
    """ZeRO stage 1: `optimizer_cls(**kwargs)` on this rank's 1/N of the flattened parameters.

    Use it where a torch optimizer goes, on every rank of `group` (default: the world), after
    each rank's backward on its own data: `step()` averages the gradients over the ranks, so no
    DDP is needed. The ranks' parameters must start equal (same seed, or a broadcast).
    Trainable parameters only (requires_grad False: left out), each once (a tied parameter
    passed twice counts once); one dtype. `param_groups` is the inner optimizer's single group
    (set lr, weight_decay there; schedulers work); `state_dict()` is this rank's shard's state.
    A parameter without a gradient counts as a zero gradient (torch's optimizers skip it).
    `params` is an iterable of tensors (no per-group dicts); each becomes a view of the flat
    buffer (`p.data` re-pointed, values kept), so the all-gather writes straight into the model.
    """

    def __init__(self, params, optimizer_cls=torch.optim.AdamW, group=None, **kwargs):
        guard("tplab.zero.ShardedOptimizer")
        unique = {id(p): p for p in params if p.requires_grad}
        self.params = list(unique.values())
        if not self.params:
            raise ValueError("ShardedOptimizer got no trainable parameters (all frozen, or none)")
        dtypes = {p.dtype for p in self.params}
        if len(dtypes) > 1:
            raise TypeError(f"ShardedOptimizer flattens the parameters into one buffer, so they "
                            f"need one dtype; got {sorted(map(str, dtypes))}: cast the model first")
        if not dist.is_initialized():
            raise RuntimeError("ShardedOptimizer shards over torch.distributed ranks: create it "
                               "inside a function run by tplab.launch (or under torchrun)")
        self.group, self.world = group, dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        self.numel = sum(p.numel() for p in self.params)
        self.shard_numel = math.ceil(self.numel / self.world)      # ceil(P/N): padding at the end
        first = self.params[0]
        self.flat = torch.zeros(self.shard_numel * self.world, dtype=first.dtype,
                                device=first.device)
        self.flat_grad = torch.zeros_like(self.flat)
        offset = 0
        with torch.no_grad():
            for p in self.params:           # each parameter becomes a view of its piece
                piece = self.flat[offset: offset + p.numel()]
                piece.copy_(p.detach().reshape(-1))
                p.data = piece.view_as(p)
                offset += p.numel()
        start = self.rank * self.shard_numel
        self.shard = torch.nn.Parameter(self.flat[start: start + self.shard_numel])  # a view
        self.shard.grad = torch.zeros_like(self.shard)
        self.optim = optimizer_cls([self.shard], **kwargs)
        super().__init__([self.shard], self.optim.defaults)
        self.param_groups, self.state = self.optim.param_groups, self.optim.state

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        offset = 0
        for p in self.params:
            piece = self.flat_grad[offset: offset + p.numel()]
            piece.copy_(p.grad.reshape(-1)) if p.grad is not None else piece.zero_()
            offset += p.numel()
        comm.reduce_scatter(self.shard.grad, self.flat_grad, self.group)  # my slice, summed
        self.shard.grad.div_(self.world)                               # ... averaged
        self.optim.step()                                              # on my slice only
        comm.all_gather_into(self.flat, self.shard.detach(), self.group)  # every slice, everywhere
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()

    def state_dict(self):
        return self.optim.state_dict()

    def load_state_dict(self, state_dict) -> None:
        self.optim.load_state_dict(state_dict)
        self.param_groups, self.state = self.optim.param_groups, self.optim.state


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of optimizer state this rank holds: every tensor in its `state` (AdamW: exp_avg and
    exp_avg_sq per element, and a 4-byte `step` per parameter tensor). For
    `ZeroRedundancyOptimizer`, the state of its local optimizer (this rank's parameters)."""
    inner = getattr(optimizer, "optim", None)
    state = (inner if isinstance(inner, torch.optim.Optimizer) else optimizer).state
    return sum(t.numel() * t.element_size() for per_param in state.values()
               for t in per_param.values() if isinstance(t, torch.Tensor))

"""Training the small Llama on a dp × pp × tp grid, and the one-process run it must equal.

One step on a rank of the grid (`train_3d`):

1. its replica's share of the batch: sequences [dp_index·B/dp, (dp_index + 1)·B/dp), cut
   into m equal micro-batches;
2. `tplab.pp.run_step` runs the pipeline schedule (1F1B by default) over the pp group: the
   first stage embeds the micro-batches, the last computes each one's cross-entropy, the
   step's loss is Σ_i CE_i / m, the mean over the replica's tokens. Inside each stage the
   tensor-parallel blocks all-reduce over the tp group (f/g, `tplab.tp.ops`);
3. the gradients, flattened into one buffer, are all-reduced over the dp group and divided
   by dp: the mean over the whole batch's tokens, exactly the one-process loss's gradient;
4. SGD (plain, no momentum: an update linear in the gradient, so the parallel run stays
   within float rounding of the reference; AdamW's g/√v would magnify those roundings in
   gradients near zero).

Equal micro-batches are what make "mean of means" the mean, so the batch must divide into
dp·m equal parts. The reference (`train_reference`) is the same model, batch and optimizer
on one process, with no communication at all.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from tplab import comm
from tplab.grid3d.model import TINY, Config, dense_model, gather_parameters, rank_stage
from tplab.grid3d.traffic import trace_by_group
from tplab.mesh import Grid, new_groups
from tplab.pp import run_step, schedule

__all__ = ["token_batch", "next_token_loss", "train_reference", "train_3d"]

LR = 0.5


def token_batch(config: Config = TINY, batch: int = 4, seq: int = 8,
                seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed synthetic batch: random token ids [batch, seq] and their next tokens."""
    tokens = torch.randint(config.vocab_size, (batch, seq + 1),
                           generator=torch.Generator().manual_seed(seed))
    return tokens[:, :-1], tokens[:, 1:]


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the next token, averaged over every position of every sequence."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def train_reference(steps: int = 3, config: Config = TINY, batch: int = 4, seq: int = 8,
                    lr: float = LR, seed: int = 0) -> dict:
    """One process: {"losses": the loss at each step (before its update), "params": the
    parameters after `steps` SGD steps, by name}."""
    model = dense_model(config, seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    ids, targets = token_batch(config, batch, seq)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = next_token_loss(model(ids), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return {"losses": losses, "params": {n: p.detach().clone()
                                         for n, p in model.named_parameters()}}


def _check_batch(batch: int, dp: int, micro_batches: int) -> int:
    if micro_batches < 1 or batch % (dp * micro_batches):
        raise ValueError(f"a batch of {batch} sequences cannot be cut into dp·m = "
                         f"{dp}·{micro_batches} equal micro-batches: choose a batch that is a "
                         f"multiple of {dp * max(micro_batches, 1)}")
    return batch // (dp * micro_batches)


def _average_gradients(params: list, dp_group, dp: int) -> None:
    """One all-reduce of every gradient at once over the dp group, then ÷ dp."""
    if dp == 1:
        return
    grads = [p.grad for p in params]
    flat = comm.all_reduce(_flatten_dense_tensors(grads), dp_group)
    flat /= dp
    for grad, reduced in zip(grads, _unflatten_dense_tensors(flat, grads)):
        grad.copy_(reduced)


def train_3d(dp: int, pp: int, tp: int, steps: int = 3, micro_batches: int = 2, *,
             schedule_name: str = "1f1b", config: Config = TINY, batch: int = 4,
             seq: int = 8, lr: float = LR, seed: int = 0) -> dict:
    """Train on this rank's place in a dp × pp × tp grid; call on every rank of the world.

    Returns {"coords": (pp, dp, tp) of this rank, "losses": the whole batch's loss per step
    (on last-stage ranks; None elsewhere), "params": the whole model after `steps` steps,
    gathered from this rank's replica (every rank), "traffic": {group: {op: {"calls",
    "bytes"}}} this rank made during training, "total": `tplab.comm.trace()`'s summary of the
    same calls}.
    """
    grid = Grid.of(dist.get_world_size(), dp, pp, tp)
    micro = _check_batch(batch, dp, micro_batches)
    where = grid.coords(dist.get_rank())
    groups = new_groups(grid)
    stage = rank_stage(dense_model(config, seed), config, pp, where.pp, groups["tp"])
    params = list(stage.parameters())
    optimizer = torch.optim.SGD(params, lr=lr)
    ids, targets = token_batch(config, batch, seq)
    mine = slice(where.dp * batch // dp, (where.dp + 1) * batch // dp)
    inputs, labels = ids[mine].split(micro), targets[mine].split(micro)
    actions = schedule(schedule_name, pp, micro_batches, where.pp)
    losses = []
    with comm.trace() as total, trace_by_group(groups) as traffic:
        for _ in range(steps):
            optimizer.zero_grad()
            step = run_step([stage], actions, inputs, labels, next_token_loss,
                            recv_shape=(micro, seq, config.hidden), group=groups["pp"])
            _average_gradients(params, groups["dp"], dp)
            optimizer.step()
            losses.append(step.loss)
    if where.pp == pp - 1:  # the replicas' losses averaged (outside the traced steps)
        losses = torch.tensor(losses, dtype=torch.float64)
        dist.all_reduce(losses, group=groups["dp"])
        losses = (losses / dp).tolist()
    else:
        losses = None
    return {"coords": tuple(where), "losses": losses,
            "params": gather_parameters(stage, groups["tp"], groups["pp"]),
            "traffic": {g: t.summary() for g, t in traffic.items()}, "total": total.summary()}

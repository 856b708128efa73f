"""ZeRO: the paper's memory formula; ZeRO-1 on real ranks against one-process AdamW."""
import math

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.optim import ZeroRedundancyOptimizer

import tplab
from tplab import comm
from tplab.zero import ShardedOptimizer, optimizer_state_bytes, zero_memory_bytes


def test_zero_memory_matches_the_papers_7_5b_on_64_gpus_example():
    gigabytes = [zero_memory_bytes(7.5e9, 64, stage) / 1e9 for stage in range(4)]
    assert [round(g, 1) for g in gigabytes] == [120.0, 31.4, 16.6, 1.9]
    assert gigabytes == pytest.approx([120, 30 + 90 / 64, 15 + 105 / 64, 120 / 64])


def test_zero_memory_on_one_rank_is_plain_data_parallelism():
    assert {zero_memory_bytes(1000, 1, stage) for stage in range(4)} == {16000}


@pytest.mark.parametrize("bad", [dict(stage=4), dict(stage=-1), dict(n=0), dict(n=2.0)])
def test_zero_memory_refuses_bad_stage_or_rank_count(bad):
    args = dict(psi=10, n=2, stage=1) | bad
    with pytest.raises(ValueError, match="stage|n \\(data"):
        zero_memory_bytes(**args)


# ---- ZeRO-1 on real ranks ------------------------------------------------------------------

VOCAB, DIM, PER_RANK, SEQ, STEPS = 19, 6, 2, 5, 3
ADAMW = dict(lr=0.05, betas=(0.9, 0.95), weight_decay=0.1)
LATER_LR = 0.02  # set through param_groups after the first step, as a scheduler would


class TiedNet(nn.Module):
    """An MLP whose output layer is its embedding again (one parameter used twice) and a frozen
    scale: 354 trainable numbers, not a multiple of 4, so 4 ranks pad the buffer to 4 x 89."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(VOCAB, DIM)
        self.hidden = nn.Sequential(nn.Linear(DIM, 3 * DIM), nn.Tanh(), nn.Linear(3 * DIM, DIM))
        self.frozen_scale = nn.Parameter(torch.linspace(0.5, 1.5, DIM), requires_grad=False)

    def forward(self, ids):
        h = self.emb(ids)
        return ((h + self.hidden(h)) * self.frozen_scale) @ self.emb.weight.T


TRAINABLE = 19 * 6 + (6 * 18 + 18) + (18 * 6 + 6)


def batch(step, world_size):
    generator = torch.Generator().manual_seed(100 + step)
    return torch.randint(0, VOCAB, (world_size * PER_RANK, SEQ + 1), generator=generator)


def loss_of(model, ids):
    logits = model(ids[:, :-1])
    return F.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))


def average_gradients(model):
    """What DDP does before ZeroRedundancyOptimizer's step (it does not average them itself)."""
    for p in model.parameters():
        if p.grad is not None:
            comm.all_reduce(p.grad).div_(dist.get_world_size())


def train(model, optimizer, world_size, rank=None, before_step=lambda model: None):
    """STEPS steps on the world's batches: rank's share of each, or all of it (rank None)."""
    for step in range(STEPS):
        ids = batch(step, world_size)
        if rank is not None:
            ids = ids[rank * PER_RANK:(rank + 1) * PER_RANK]
        optimizer.zero_grad()
        loss_of(model, ids).backward()
        before_step(model)
        optimizer.step()
        if step == 0:
            optimizer.param_groups[0]["lr"] = LATER_LR
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def reference(world_size):
    model = TiedNet()
    optimizer = torch.optim.AdamW(model.parameters(), **ADAMW)
    return train(model, optimizer, world_size), optimizer


def on_rank():
    rank, world = dist.get_rank(), dist.get_world_size()
    model = TiedNet()
    params = [*model.parameters(), model.emb.weight, model.frozen_scale]  # twice, frozen
    optimizer = ShardedOptimizer(params, torch.optim.AdamW, **ADAMW)
    with comm.trace() as traced:
        ours = train(model, optimizer, world, rank)
    shard_state = {k: v.numel() for k, v in optimizer.state_dict()["state"][0].items()}
    zro_model = TiedNet()
    zro = ZeroRedundancyOptimizer(zro_model.parameters(), torch.optim.AdamW, **ADAMW)
    theirs = train(zro_model, zro, world, rank, average_gradients)
    return dict(ours=ours, theirs=theirs, traffic=traced.summary(), shard_state=shard_state,
                state_bytes=optimizer_state_bytes(optimizer),
                zro_state_bytes=optimizer_state_bytes(zro))


@pytest.mark.parametrize("world_size", [2, 4])
def test_zero1_equals_adamw_on_the_full_batch_with_1_over_n_of_the_state(world_size):
    expected, full = reference(world_size)
    results = tplab.launch(on_rank, world_size, timeout=60)
    shard = math.ceil(TRAINABLE / world_size)
    assert sum(p.numel() for p in TiedNet().parameters() if p.requires_grad) == TRAINABLE
    for r in results:
        for name, want in expected.items():
            torch.testing.assert_close(r["ours"][name], want, atol=1e-6, rtol=0)
            torch.testing.assert_close(r["theirs"][name], want, atol=1e-6, rtol=0)
        # exp_avg + exp_avg_sq: ceil(P/N) fp32 each; step: one fp32 scalar
        assert r["state_bytes"] == 2 * 4 * shard + 4
        assert r["shard_state"] == {"step": 1, "exp_avg": shard, "exp_avg_sq": shard}
        # per step: reduce-scatter hands in the whole padded gradient, all-gather my slice
        padded = shard * world_size
        assert r["traffic"] == {"reduce_scatter": {"calls": STEPS, "bytes": STEPS * 4 * padded},
                                "all_gather": {"calls": STEPS, "bytes": STEPS * 4 * shard}}
    trainable_tensors = 5  # emb, and two Linear's weight and bias
    assert optimizer_state_bytes(full) == 2 * 4 * TRAINABLE + 4 * trainable_tensors
    # ZeroRedundancyOptimizer shards whole parameters: uneven, but all of them, once
    zro = [r["zro_state_bytes"] for r in results]
    assert sum(zro) == optimizer_state_bytes(full)
    print(f"N={world_size}: ShardedOptimizer {[r['state_bytes'] for r in results]} B/rank, "
          f"ZeroRedundancyOptimizer {zro}, AdamW on one process {optimizer_state_bytes(full)}")


def test_sharded_optimizer_says_what_is_wrong_with_its_parameters():
    with pytest.raises(ValueError, match="no trainable parameters"):
        ShardedOptimizer([nn.Parameter(torch.ones(3), requires_grad=False)])
    with pytest.raises(TypeError, match="one dtype"):
        ShardedOptimizer([nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3).double())])
    with pytest.raises(RuntimeError, match="tplab.launch"):
        ShardedOptimizer([nn.Parameter(torch.ones(3))])


def test_zero_pictures_draw_the_papers_bars_and_each_ranks_state():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tplab.viz.zero_sp import draw_optimizer_state, draw_zero_stages

    fig = draw_zero_stages(7.5e9, 64)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["120.0 GB", "31.4 GB", "16.6 GB", "1.9 GB"]
    plt.close(fig)
    fig = draw_optimizer_state({"ShardedOptimizer": [1420, 1420],
                                "ZeroRedundancyOptimizer": [1116, 1736]}, 2852)
    assert len(fig.axes[0].patches) == 4
    plt.close(fig)

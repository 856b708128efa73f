"""The article's case 2, done right: LeNet-5 cut into two pipeline stages on two ranks.

Why it is here. The source article's case 2 ("model-parallel LeNet") sets up a data-parallel
strategy with invented APIs and never moves an activation between devices. Model (pipeline)
parallelism means something precise: stage 0 (the convolutions) runs on rank 0, sends its
activations — 400 numbers per image, 16 channels of 5×5 — to rank 1, which runs the fully
connected layers and the loss; the gradient of those 400 numbers travels back, and each rank
updates only its own layers. Trained that way on real digits (`tplab.digits`), with the same
seed, it must give the single-process loss curve (within 1e-5) and the same test accuracy —
otherwise it is not the same model.

The network is the usual modern rendition of LeNet-5 (LeCun et al. 1998): the paper's layer
sizes, tanh and average pooling. The 1998 network itself had a scaled tanh, trainable
subsampling, sparse connections into C3 and RBF outputs.

Why tanh and average pooling rather than ReLU and max pooling: the pipeline computes each
micro-batch's convolutions apart, which rounds a little differently (1e-7) from one whole-batch
convolution. A smooth network carries that along as
1e-7; with max pooling, a rounding difference can change which input wins a pooling window,
the gradient takes another path, and within a few epochs the curves part by 1e-4 to 1e-2
(measured here on some seeds). Same sums, different rounding: the comparison would fail for a
reason that has nothing to do with pipelining.

    data = load_digits_32()
    losses, model = train_single(data)                                 # the reference
    got = tplab.launch(train_pipelined, 2, data, "1f1b", 4)            # the pipeline, m = 4
    got[1]["losses"] == losses (1e-5), got[1]["accuracy"] == accuracy(model, ...)
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tplab.pp.executor import run_step
from tplab.pp.schedules import Action, schedule

__all__ = ["LeNet5", "BOUNDARY", "make_lenet", "train_single", "accuracy", "train_pipelined",
           "pipelined_predict"]

BOUNDARY = 16 * 5 * 5   # numbers per image crossing the cut (the flattened last pooling)
EPOCHS, BATCH, LR, MOMENTUM = 3, 64, 0.05, 0.9


class LeNet5(nn.Module):
    """The usual modern rendition of LeNet-5 (tanh, average pooling; the 1998 network had
    scaled tanh, trainable subsampling, sparse C3 connections and RBF outputs): 32×32 → 10.

    features:   conv 6@5×5 → pool → conv 16@5×5 → pool → flatten (400)     stage 0
    classifier: fc 120 → fc 84 → fc 10                                       stage 1
    """

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten())
        self.classifier = nn.Sequential(
            nn.Linear(BOUNDARY, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(),
            nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.features(x))

    def stages(self) -> list[nn.Module]:
        """The two pipeline stages, sharing this model's parameters."""
        return [self.features, self.classifier]


def make_lenet(seed: int = 0) -> LeNet5:
    """The same initial weights in every process that asks with the same seed."""
    torch.manual_seed(seed)
    return LeNet5()


def _optimizer(params):
    return torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)


def train_single(data, epochs: int = EPOCHS, batch: int = BATCH, seed: int = 0):
    """One process, whole batches: (loss per step, trained model). The reference."""
    model = make_lenet(seed)
    opt = _optimizer(model.parameters())
    losses = []
    for epoch in range(epochs):
        for x, y in data.batches(batch, epoch):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses, model


@torch.no_grad()
def accuracy(model, x, y) -> float:
    """Share of rows whose largest logit is the label."""
    return (model(x).argmax(1) == y).float().mean().item()


def pipelined_predict(stage: nn.Module, x, m: int, p: int = 2):
    """Forward-only pipeline over `x` (used on rank 0; other ranks pass None), m equal
    micro-batches: the last rank gets the logits [rows, 10], the others None."""
    rank = dist.get_rank()
    rows = torch.tensor([0 if x is None else len(x)])
    dist.broadcast(rows, 0)
    n = int(rows)
    if n % m:
        raise ValueError(f"{n} rows do not split into {m} equal micro-batches")
    actions = [Action("F", i) for i in range(m)]
    inputs = list(x.chunk(m)) if rank == 0 else None
    step = run_step([stage], actions, inputs, recv_shape=(n // m, BOUNDARY))
    return torch.cat(step.outputs) if rank == p - 1 else None


def train_pipelined(data, name: str = "1f1b", m: int = 4, epochs: int = EPOCHS,
                    batch: int = BATCH, seed: int = 0) -> dict:
    """On each of 2 ranks: build LeNet-5 at `seed`, keep this rank's stage, train it with
    `tplab.pp.run_step` (schedule `name`, m micro-batches per batch), then classify the test
    set through the pipeline. Returns {"losses", "accuracy", "logits"} (None except on the
    last rank) and {"state"}: this stage's trained weights."""
    rank, p = dist.get_rank(), dist.get_world_size()
    if p != 2:
        raise ValueError(f"LeNet-5 is cut into 2 stages: launch it on 2 ranks, not {p}")
    if batch % m:
        raise ValueError(f"a batch of {batch} does not split into {m} equal micro-batches")
    stage = make_lenet(seed).stages()[rank]
    opt = _optimizer(stage.parameters())
    actions = schedule(name, p, m, rank)
    losses = []
    for epoch in range(epochs):
        for x, y in data.batches(batch, epoch):
            opt.zero_grad()
            step = run_step([stage], actions, list(x.chunk(m)) if rank == 0 else None,
                            list(y.chunk(m)) if rank == p - 1 else None, F.cross_entropy,
                            recv_shape=(batch // m, BOUNDARY))
            opt.step()
            losses.append(step.loss)
    logits = pipelined_predict(stage, data.test_x if rank == 0 else None, m, p)
    last = rank == p - 1
    return {"losses": losses if last else None,
            "accuracy": (logits.argmax(1) == data.test_y).float().mean().item() if last else None,
            "logits": logits,
            "state": {k: v.clone() for k, v in stage.state_dict().items()}}

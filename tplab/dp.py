"""Data parallelism: every rank holds the whole model and a slice of the batch.

Inference needs no communication until the end: split the batch, run the replicas,
gather the outputs back in order. Training needs one thing more: before each optimizer
step the ranks average their gradients, so every replica takes the same step — the step
one process would take on the whole batch. (The source article's answer takes each
device's gradients of its *outputs with respect to its inputs* and never averages them
before one optimizer step; its towers share one set of variables, and on separate ranks
the same omission lets the replicas drift apart.)

`DataParallel` does the averaging the way PyTorch DDP does: gradients go into buckets of
about `bucket_mb` MiB in reverse parameter order (roughly the order backward produces
them), and each bucket's all-reduce starts, asynchronously, as soon as its last gradient
is ready — so communication overlaps the rest of backward. Buckets are launched in
bucket order on every rank, which keeps the collectives matched across ranks.
`bucket_mb=0` is the naive version: one blocking all-reduce per parameter after backward.

All of it goes through `tplab.comm.all_reduce` (asynchronous, so torch.distributed's route,
as DDP's), which reports to `tplab.comm.hooks`: the tracer counts these all-reduces, and
`timeline=True` subscribes to learn when each bucket's all-reduce completed. Every wait is
`tplab.comm.wait`, so a rank stuck waiting for a peer that never joined the gradient sync is
reported by a timed-out launch as waiting in a collective, not as the culprit.
"""
from __future__ import annotations

import contextlib
import time

import torch
import torch.distributed as dist
from torch import nn

from tplab import comm

__all__ = ["shard_batch", "gather_batch", "data_parallel_forward", "DataParallel"]


def shard_batch(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's rows of `batch`: contiguous slices whose sizes differ by at most one."""
    return torch.tensor_split(batch, world_size)[rank]


def gather_batch(local: torch.Tensor, group=None) -> torch.Tensor:
    """Concatenate every rank's `local` rows in rank order (sizes may differ), on every rank."""
    n = dist.get_world_size(group)
    sizes = [torch.zeros(1, dtype=torch.int64, device=local.device) for _ in range(n)]
    mine = torch.tensor([local.shape[0]], device=local.device)  # NCCL: on the GPU
    dist.all_gather(sizes, mine, group=group)
    return comm.all_gather(local, [int(s) for s in sizes], dim=0, group=group)


@torch.no_grad()
def data_parallel_forward(module: nn.Module, batch: torch.Tensor, group=None) -> torch.Tensor:
    """Inference: each rank runs its slice of `batch`; every rank gets all outputs, in order."""
    rank, n = dist.get_rank(group), dist.get_world_size(group)
    return gather_batch(module(shard_batch(batch, rank, n)), group)


class _Bucket:
    def __init__(self, params: list[nn.Parameter]):
        self.params = params
        self.ready: set[int] = set()
        self.flat: torch.Tensor | None = None
        self.work = None  # its all-reduce, once launched

    def fill(self) -> torch.Tensor:
        """Copy the gradients into one flat buffer (zeros for a parameter without one)."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        self.flat = torch.cat([g.reshape(-1) for g in grads])
        return self.flat


class DataParallel(nn.Module):
    """Wrap `module` so that `finish_gradient_sync()` leaves every rank with the average gradient.

        model = DataParallel(net)
        loss_fn(model(x_local), y_local).backward()   # all-reduces start during backward
        model.finish_gradient_sync()                   # wait, average
        optimizer.step()

    timeline=True keeps, in `self.events`, the latest step's (what, bucket, time.perf_counter()):
    "forward" (bucket -1) when it began, "ready" when a parameter's gradient arrived, "launch"
    when a complete bucket was handed on (stamped before its gradients are copied into one flat
    buffer, so a bar from launch to completion includes that copy), "complete" when its all-reduce
    completed (from `tplab.comm.hooks`: the Work's future), "done" when finish_gradient_sync had
    it back. Lesson 02 draws its timeline from these. bucket_mb=0 keeps only "forward": its
    all-reduces all happen inside finish_gradient_sync.
    """

    def __init__(self, module: nn.Module, bucket_mb: float = 25.0, group=None,
                 timeline: bool = False):
        super().__init__()
        if bucket_mb < 0:
            raise ValueError(f"bucket_mb must be >= 0 (0 = one all-reduce per parameter), "
                             f"got {bucket_mb}")
        self.module, self.group, self.bucket_mb = module, group, bucket_mb
        self.world_size = dist.get_world_size(group)
        self._syncing = True
        with torch.no_grad():  # every replica starts from rank 0's weights
            source = 0 if group is None else dist.get_global_rank(group, 0)
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor, src=source, group=group)
        # module.parameters() yields a tied parameter once: it is bucketed, and reduced, once
        trainable = [p for p in module.parameters() if p.requires_grad]
        self.buckets = self._make_buckets(trainable[::-1]) if bucket_mb > 0 else []
        self._where = {id(p): (b, i) for b, bucket in enumerate(self.buckets)
                       for i, p in enumerate(bucket.params)}
        self._trainable = trainable
        self._next_launch = 0
        self.timeline = timeline
        self.events: list[tuple[str, int, float]] = []
        self._launching: int | None = None     # the bucket whose all-reduce is being started
        self._bucket_of: dict = {}             # a launched all-reduce (its Collective) -> bucket
        self._subscription = None
        self._hooks = [p.register_post_accumulate_grad_hook(self._grad_ready)
                       for p in trainable] if bucket_mb > 0 else []

    def _make_buckets(self, params: list[nn.Parameter]) -> list[_Bucket]:
        limit = self.bucket_mb * 2**20
        buckets, current, size = [], [], 0
        for p in params:
            current.append(p)
            size += p.numel() * p.element_size()
            if size >= limit:
                buckets.append(_Bucket(current))
                current, size = [], 0
        if current:
            buckets.append(_Bucket(current))
        return buckets

    def forward(self, *args, **kwargs):
        if self._syncing and self.timeline:
            self.events = [("forward", -1, time.perf_counter())]
            if self.buckets and self._subscription is None:  # until finish_gradient_sync ends
                self._subscription = comm.hooks.subscribe(self._on_collective, direct=False)
        return self.module(*args, **kwargs)

    def _on_collective(self, kind: str, call) -> None:
        """Subscribed to tplab.comm.hooks while a step is timed: the buckets' completion times
        (on gloo's thread, from the Work's future); "start" says which call is which bucket's."""
        if kind == "start" and self._launching is not None:  # (called inside comm.all_reduce)
            self._bucket_of[call] = self._launching
        elif kind == "end" and call in self._bucket_of:
            self.events.append(("complete", self._bucket_of.pop(call), call.end))

    @contextlib.contextmanager
    def no_sync(self):
        """Accumulate gradients locally; the next backward outside the block syncs the total."""
        self._syncing = False
        try:
            yield
        finally:
            self._syncing = True

    def _grad_ready(self, param: nn.Parameter) -> None:
        """Autograd calls this once per backward for each parameter, after its .grad is final."""
        if not self._syncing:
            return
        b, i = self._where[id(param)]
        if i in self.buckets[b].ready:  # its bucket may be on its way: this gradient would be lost
            raise RuntimeError("a second backward before finish_gradient_sync(): call "
                               "finish_gradient_sync() after each backward, or accumulate "
                               "gradients inside `with model.no_sync():`")
        self.buckets[b].ready.add(i)
        if self.timeline:
            self.events.append(("ready", b, time.perf_counter()))
        self._launch_ready_buckets()

    def _launch_ready_buckets(self, force: bool = False) -> None:
        """Start all-reduces for complete buckets, strictly in bucket order (the same on every
        rank)."""
        while self._next_launch < len(self.buckets):
            bucket = self.buckets[self._next_launch]
            if not force and len(bucket.ready) < len(bucket.params):
                return
            if self.timeline:
                self.events.append(("launch", self._next_launch, time.perf_counter()))
            self._launching = self._next_launch
            bucket.work = comm.all_reduce(bucket.fill(), self.group, async_op=True)
            self._launching = None
            self._next_launch += 1

    def finish_gradient_sync(self) -> None:
        """Wait for the all-reduces and leave the average gradient in every parameter's .grad."""
        try:
            if self.buckets:
                self._finish_buckets()
            else:
                self._sync_each_parameter()
        finally:  # however it ended (an error included), a timed step stops listening here
            if self._subscription is not None:
                self._subscription.remove()
                self._subscription = None
                self._bucket_of.clear()

    def _sync_each_parameter(self) -> None:
        """Naive: one all-reduce per parameter, each waited for at once (on torch's route, as
        the buckets': only bucketing differs)."""
        for p in self._trainable:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            comm.wait(comm.all_reduce(p.grad, self.group, async_op=True))
            p.grad.div_(self.world_size)

    def _finish_buckets(self) -> None:
        self._launch_ready_buckets(force=True)  # buckets a parameter without a gradient held back
        with torch.no_grad():
            for b, bucket in enumerate(self.buckets):
                comm.wait(bucket.work)
                if self.timeline:
                    self.events.append(("done", b, time.perf_counter()))
                bucket.flat.div_(self.world_size)
                offset = 0
                for p in bucket.params:
                    piece = bucket.flat[offset: offset + p.numel()].view_as(p)
                    if p.grad is None:
                        p.grad = piece.clone()
                    else:
                        p.grad.copy_(piece)
                    offset += p.numel()
                bucket.ready.clear()
                bucket.flat, bucket.work = None, None
        self._next_launch = 0

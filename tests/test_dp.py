"""Data parallelism against one process: same parameters, on every rank, whatever the buckets."""
import time

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import tplab
from tplab import comm
from tplab.dp import DataParallel, data_parallel_forward, gather_batch, shard_batch

VOCAB, DIM, PER_RANK, SEQ = 23, 8, 4, 5


class TiedNet(nn.Module):
    """Awkward on purpose: a tied embedding/head, a frozen parameter, a LayerNorm."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, DIM)
        self.up, self.down = nn.Linear(DIM, 3 * DIM), nn.Linear(3 * DIM, DIM)
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, VOCAB, bias=False)
        self.head.weight = self.emb.weight
        self.frozen_shift = nn.Parameter(torch.linspace(-1, 1, DIM), requires_grad=False)

    def forward(self, ids):
        h = self.emb(ids) + self.frozen_shift
        h = self.norm(h + self.down(torch.relu(self.up(h))))
        return self.head(h)


def make_model():
    torch.manual_seed(0)
    return TiedNet()


def batches(steps, world_size):
    g = torch.Generator().manual_seed(123)
    shape = (world_size * PER_RANK, SEQ + 1)
    return [torch.randint(0, VOCAB, shape, generator=g) for _ in range(steps)]


def loss_of(model, rows):
    logits = model(rows[:, :-1])
    return F.cross_entropy(logits.reshape(-1, VOCAB), rows[:, 1:].reshape(-1))


def train_single(steps, world_size):
    model = make_model()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5, momentum=0.9)
    for rows in batches(steps, world_size):
        opt.zero_grad()
        loss_of(model, rows).backward()
        opt.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def train_dp(steps, bucket_mb, micro=1):
    rank, n = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(1000 + rank)  # replicas start different: wrapping must fix that
    net = TiedNet()
    if rank == 0:  # rank 0 holds the reference initial weights
        net.load_state_dict(make_model().state_dict())
    model = DataParallel(net, bucket_mb=bucket_mb)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5, momentum=0.9)
    with comm.trace() as t:
        for rows in batches(steps, n):
            mine = shard_batch(rows, rank, n)
            opt.zero_grad()
            pieces = torch.tensor_split(mine, micro)
            with model.no_sync():
                for piece in pieces[:-1]:
                    (loss_of(model, piece) / micro).backward()
            (loss_of(model, pieces[-1]) / micro).backward()
            model.finish_gradient_sync()
            opt.step()
    state = {k: v.clone() for k, v in model.module.state_dict().items()}
    return state, t.count("all_reduce"), len(model.buckets)


def assert_matches_single(results, steps, world_size):
    reference = train_single(steps, world_size)
    for rank, (state, _, _) in enumerate(results):
        for name, value in state.items():
            assert torch.equal(value, results[0][0][name]), \
                f"rank {rank} differs from rank 0 in {name}"
            torch.testing.assert_close(value, reference[name], rtol=0, atol=1e-6,
                                       msg=f"{name} vs one process")


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("bucket_mb", [0.0, 0.0005, 25.0])
def test_dp_training_equals_one_process_on_the_whole_batch(world_size, bucket_mb):
    steps = 3
    results = tplab.launch(train_dp, world_size, steps, bucket_mb, timeout=120)
    assert_matches_single(results, steps, world_size)


def test_bucket_size_changes_only_the_number_of_collectives():
    steps, counts, states = 2, {}, {}
    for bucket_mb in (0.0, 0.0005, 25.0):
        results = tplab.launch(train_dp, 2, steps, bucket_mb, timeout=120)
        state, calls, buckets = results[0]
        states[bucket_mb] = state
        counts[bucket_mb] = (calls, buckets)
    trainable = sum(1 for p in make_model().parameters() if p.requires_grad)  # the tied weight once
    assert counts[0.0][0] == steps * trainable          # naive: one per parameter per step
    assert counts[25.0] == (steps * 1, 1)               # one bucket holds everything
    calls, buckets = counts[0.0005]
    assert 1 < buckets < trainable + 1 and calls == steps * buckets
    for name in states[0.0]:
        torch.testing.assert_close(states[0.0005][name], states[0.0][name], rtol=0, atol=1e-6)
        torch.testing.assert_close(states[25.0][name], states[0.0][name], rtol=0, atol=1e-6)


def test_no_sync_accumulation_equals_one_large_step():
    steps = 2
    results = tplab.launch(train_dp, 2, steps, 0.0005, 2, timeout=120)  # 2 micro-batches per step
    assert_matches_single(results, steps, 2)
    _, calls, buckets = results[0]
    assert calls == steps * buckets  # no all-reduce inside no_sync


def dp_inference(rows):
    model = DataParallel(make_model())
    return data_parallel_forward(model.module, rows[:, :-1])


@pytest.mark.parametrize("world_size", [2, 3])
def test_dp_inference_gathers_outputs_in_order_uneven_split(world_size):
    rows = batches(1, 1)[0][:7]  # 7 rows over 2 or 3 ranks: uneven
    expected = make_model()(rows[:, :-1]).detach()
    for out in tplab.launch(dp_inference, world_size, rows):
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_gather_batch_handles_empty_shards():
    def gather():
        rows = dist.get_rank() * 2  # 0, 2, 4 rows
        local = torch.arange(rows, dtype=torch.float32).reshape(-1, 1)
        return gather_batch(local)

    out = tplab.launch(gather, 3)[0]
    assert out.squeeze(1).tolist() == [0.0, 1.0, 0.0, 1.0, 2.0, 3.0]


def test_negative_bucket_size_is_refused():
    def bad():
        DataParallel(nn.Linear(2, 2), bucket_mb=-1)

    with pytest.raises(tplab.WorkerError, match="bucket_mb must be >= 0"):
        tplab.launch(bad, 1)


def test_buckets_start_during_backward_in_reverse_order():
    def step():
        model = DataParallel(make_model(), bucket_mb=0.0005)
        ids = batches(1, 1)[0][:, :-1]
        with comm.trace() as t:
            model(ids).sum().backward()
            during = t.count("all_reduce")       # started by the hooks, before finish_gradient_sync
            model.finish_gradient_sync()
        last_param = [p for p in model.module.parameters() if p.requires_grad][-1]
        return during, len(model.buckets), model.buckets[0].params[0] is last_param

    during, buckets, reversed_order = tplab.launch(step, 2)[0]
    assert buckets > 1 and during == buckets
    assert reversed_order  # backward produces the last parameters' gradients first


def test_second_backward_without_finishing_is_refused():
    def twice():
        model = DataParallel(nn.Linear(2, 2))
        x = torch.ones(1, 2)
        model(x).sum().backward()
        model(x).sum().backward()  # forgot finish_gradient_sync(): the first bucket is already sent

    with pytest.raises(tplab.WorkerError, match="second backward before finish_gradient_sync"):
        tplab.launch(twice, 1)


def _timed_step(timeline):
    from tplab.comm import hooks

    model = DataParallel(make_model(), bucket_mb=0.0005, timeline=timeline)
    ids = batches(1, 1)[0][:, :-1]
    for _ in range(2):  # the second step's events replace the first's
        model(ids).sum().backward()
        backward_end = time.perf_counter()
        listening = len(hooks.subscribers)
        model.finish_gradient_sync()
    return model.events, len(model.buckets), backward_end, listening, len(hooks.subscribers)


def test_timeline_has_each_buckets_launch_completion_and_collection_from_the_hooks():
    for events, buckets, backward_end, listening, after in tplab.launch(_timed_step, 2, True):
        assert listening == 1 and after == 0  # subscribed for the step only
        assert [kind for kind, _, _ in events].count("forward") == 1 and events[0][0] == "forward"
        kinds = ("launch", "complete", "done")
        times = {kind: {b: t for k, b, t in events if k == kind} for kind in kinds}
        for kind in times:
            assert sorted(times[kind]) == list(range(buckets)), (kind, events)
            assert [k for k, _, _ in events].count(kind) == buckets, (kind, events)
        for b in range(buckets):
            assert times["launch"][b] <= times["complete"][b] <= times["done"][b], (b, events)
        assert times["launch"][0] < backward_end  # the first bucket left during backward
    for events, _, _, listening, after in tplab.launch(_timed_step, 2, False):
        assert events == [] and listening == after == 0  # no timeline: nothing kept, no subscriber


def _naive_timed_step():
    from tplab.comm import hooks

    model = DataParallel(make_model(), bucket_mb=0, timeline=True)
    model(batches(1, 1)[0][:, :-1]).sum().backward()
    model.finish_gradient_sync()
    return len(hooks.subscribers), [kind for kind, _, _ in model.events]


def test_naive_timeline_leaves_no_subscriber_behind():
    for listening, kinds in tplab.launch(_naive_timed_step, 2):
        assert listening == 0 and kinds == ["forward"]


def _rank_1_skips_the_sync(bucket_mb):
    model = DataParallel(make_model(), bucket_mb=bucket_mb)  # both ranks: it broadcasts
    if dist.get_rank() == 1:
        time.sleep(600)  # never computes its gradients, never joins their all-reduce
    model(batches(1, 1)[0][:, :-1]).sum().backward()
    model.finish_gradient_sync()


@pytest.mark.parametrize("bucket_mb", [0.0, 25.0])
def test_a_rank_left_waiting_in_the_gradient_sync_is_reported_waiting(bucket_mb):
    with pytest.raises(tplab.WorkerError) as info:
        tplab.launch(_rank_1_skips_the_sync, 2, bucket_mb, timeout=6)  # room for slow forks
    err = info.value
    # rank 0 waits in tplab.comm.wait (not in tplab.dp, which would read as computing): rank 1,
    # which never joined, is the one to look at
    assert err.waiting == [0] and err.computing == [1] and err.suspects == [1], str(err)

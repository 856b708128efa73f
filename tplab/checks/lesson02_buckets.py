"""Checks of exercise 02.2 (solutions/02_data_parallel.ipynb): gradient buckets whose
all-reduces start during backward, in bucket order, as soon as each can.

`run_buckets` runs on every launched rank with the learner's `BucketedSync` passed in, and
logs, in order, each gradient computed and made final (autograd hooks registered before the
learner's) and each all-reduce started or waited for, as `tplab.comm.hooks` reports them;
`bucket_problem` reads one rank's log and returns the first thing wrong, with the likely slip
(a synchronous call, a wait in the hook, a launch from `Tensor.register_hook`, buckets out of
order), or None.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tplab import comm
from tplab.checks.lesson02 import Setup, flat

__all__ = ["OutputFirst", "make_output_first_model", "expected_buckets", "one_process",
           "run_buckets", "bucket_problem", "assert_replicas_equal_one_process"]

class OutputFirst(nn.Module):
    """The layers of the set-up's model, registered output-first: backward produces the gradients
    of `inp`, registered last and so in bucket 0, at its very end; later buckets complete first."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(16, 1)
        self.hidden = nn.Linear(16, 16)
        self.inp = nn.Linear(6, 16)

    def forward(self, x):
        return self.head(torch.tanh(self.hidden(torch.tanh(self.inp(x)))))


def make_output_first_model() -> nn.Module:
    torch.manual_seed(0)
    return OutputFirst()


def expected_buckets(make_model, bucket_mb: float) -> list[list[str]]:
    """The bucket rule, as parameter names: [["4.bias", "4.weight"], ...]."""
    buckets, current, size = [], [], 0
    trainable = [(name, p) for name, p in make_model().named_parameters() if p.requires_grad][::-1]
    for i, (name, p) in enumerate(trainable):
        current.append(name)
        size += p.numel() * p.element_size()
        if size >= bucket_mb * 2**20 or i == len(trainable) - 1:
            buckets, current, size = buckets + [current], [], 0
    return buckets


def one_process(setup: Setup, make_model, steps: int) -> torch.Tensor:
    """The parameters after `steps` steps of one process on the whole batch."""
    model = make_model()
    optimizer = setup.make_optimizer(model)
    for step in range(steps):
        x, y = setup.global_batch(step)
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
    return flat(model)


def run_buckets(BucketedSync, setup: Setup, models: dict, cases, steps: int = 3):
    """On every rank: the learner's BucketedSync, for each (model name, bucket_mb): its buckets,
    the parameters after `steps` steps and, per step, the events in order: ("computed", name)
    when backward has computed a gradient, not yet added into .grad (logged before any
    Tensor.register_hook hook of theirs), ("ready", name) when a gradient is final, in .grad
    (logged just before their post-accumulate hook runs), ("all_reduce", phase, async_op, bytes)
    for each all-reduce started and ("wait", phase) for each wait on one, as tplab.comm.hooks
    reports them; and the other communication calls the tracer saw."""
    rank, world = dist.get_rank(), dist.get_world_size()
    phase, log = ["set-up"], []

    def note(kind, call):
        if call.op == "all_reduce" and kind == "start":
            log.append(("all_reduce", phase[0], call.async_op, call.nbytes))
        elif call.op == "all_reduce" and kind == "wait":
            log.append(("wait", phase[0]))

    out = []
    with comm.hooks.subscribe(note):
        for model_name, bucket_mb in cases:
            model = models[model_name]()
            names = {id(p): name for name, p in model.named_parameters()}
            for name, p in model.named_parameters():  # registered first: run before theirs
                if p.requires_grad:
                    p.register_hook(lambda grad, name=name: log.append(("computed", name)))
                    p.register_post_accumulate_grad_hook(
                        lambda p, names=names: log.append(("ready", names[id(p)])))
            phase[0] = "__init__"
            sync = BucketedSync(model, bucket_mb)
            optimizer = setup.make_optimizer(model)
            events, others = [], []
            for step in range(steps):
                x, y = setup.global_batch(step)
                log.clear()
                with comm.trace() as t:
                    optimizer.zero_grad()
                    phase[0] = "backward"
                    mine = x.tensor_split(world)[rank], y.tensor_split(world)[rank]
                    F.mse_loss(model(mine[0]), mine[1]).backward()
                    phase[0] = "finish"
                    sync.finish()
                    phase[0] = "optimizer.step"
                events.append(list(log))
                others.append(sorted(set(t.counts()) - {"all_reduce", "barrier"}))
                optimizer.step()
            out.append({"buckets": [[names[id(p)] for p in bucket] for bucket in sync.buckets],
                        "params": flat(model), "events": events, "others": others})
    return out


def bucket_problem(make_model, bucket_mb: float, where: str, run: dict) -> str | None:
    """The first thing wrong in one rank's run of one case, or None."""
    want = expected_buckets(make_model, bucket_mb)
    got = run["buckets"]
    if got != want:
        b = next(b for b in range(max(len(got), len(want)))
                 if b >= len(got) or b >= len(want) or got[b] != want[b])
        return (f"{where}: bucket {b} is {got[b] if b < len(got) else 'missing'}, expected "
                f"{want[b] if b < len(want) else 'no such bucket'} (buckets {got}, expected "
                f"{want}): the parameters that require a gradient in reverse order, a bucket "
                f"closed as soon as it holds at least bucket_mb * 2**20 = {bucket_mb * 2**20:g} "
                f"bytes")
    sizes = {name: p.numel() * p.element_size() for name, p in make_model().named_parameters()}
    bucket_bytes = [sum(sizes[name] for name in bucket) for bucket in want]
    for step, events in enumerate(run["events"]):
        at = f"{where}, step {step}"
        if run["others"][step]:
            return (f"{at}: you called {run['others'][step]}; use one dist.all_reduce per bucket, "
                    f"nothing else")
        problem = (_call_problem(at, events, want) or _early_launch_problem(at, events)
                   or _launch_order_problem(at, events, want))
        if problem:
            return problem
        calls = [e for e in events if e[0] == "all_reduce"]
        for b, call in enumerate(calls):
            if call[3] != bucket_bytes[b]:
                return (f"{at}: all-reduce number {b} carried {call[3]} B, expected bucket {b}'s "
                        f"{bucket_bytes[b]} B ({want[b]}): one flat tensor per bucket, in bucket "
                        f"order")
    return None


def _call_problem(at: str, events, want) -> str | None:
    """One asynchronous all-reduce per bucket, started during backward, not waited for there."""
    calls = [e for e in events if e[0] == "all_reduce"]
    if len(calls) != len(want):
        return (f"{at}: {len(calls)} all-reduce(s), expected one per bucket ({len(want)}); "
                f"does finish() reset for the next step?")
    for b, (_, phase, async_op, _) in enumerate(calls):
        if phase != "backward":
            return (f"{at}: bucket {b}'s all-reduce started in {phase}, after backward had "
                    f"returned; start it from the hook, as soon as the bucket and every bucket "
                    f"before it are complete")
        if not async_op:
            return (f"{at}: bucket {b}'s all-reduce is synchronous: it blocks backward until "
                    f"every rank has sent that bucket; pass async_op=True, keep the work, and "
                    f"wait for it in finish()")
    if any(e[0] == "wait" and e[1] == "backward" for e in events):
        return (f"{at}: you waited for an all-reduce during backward (in the hook), which blocks "
                f"backward until every rank has sent that bucket; wait only in finish()")
    return None


def _early_launch_problem(at: str, events) -> str | None:
    """No all-reduce while a gradient is computed but not yet added into .grad."""
    pending, launched = set(), 0
    for event in events:
        if event[0] == "computed":
            pending.add(event[1])
        elif event[0] == "ready":
            pending.discard(event[1])
        elif event[0] == "all_reduce":
            if pending:
                return (f"{at}: all-reduce number {launched} started before "
                        f"{sorted(pending)[0]}'s gradient was final (backward had computed it but "
                        f"not yet added it into .grad, as when a Tensor.register_hook hook runs): "
                        f"register _grad_ready with p.register_post_accumulate_grad_hook, which "
                        f"autograd calls once p.grad holds this step's gradient, and start "
                        f"all-reduces only from there")
            launched += 1
    return None


def _launch_order_problem(at: str, events, want) -> str | None:
    """After each gradient, exactly the buckets complete in a row from bucket 0 have started."""
    bucket_of = {name: b for b, bucket in enumerate(want) for name in bucket}
    ready, launched = [0] * len(want), 0
    for i, event in enumerate(events):
        if event[0] == "all_reduce":
            launched += 1
        if event[0] != "ready" or event[1] not in bucket_of:
            continue
        ready[bucket_of[event[1]]] += 1
        complete = 0  # buckets 0, 1, ... complete in a row
        while complete < len(want) and ready[complete] == len(want[complete]):
            complete += 1
        nxt = next((j for j in range(i + 1, len(events)) if events[j][0] == "ready"), len(events))
        by_next = launched + sum(e[0] == "all_reduce" and e[1] == "backward"
                                 for e in events[i + 1:nxt])
        done = f"buckets 0..{complete - 1}" if complete else "no bucket"
        if by_next > complete:
            return (f"{at}: {by_next} all-reduce(s) had started after {event[1]}'s gradient "
                    f"arrived, when {done} (counting from bucket 0, {want[0]}) were complete: "
                    f"launch buckets in bucket order, bucket b only after buckets 0..b-1, even "
                    f"when a later bucket completes first")
        if by_next < complete:
            return (f"{at}: {done} were complete once {event[1]}'s gradient arrived, but only "
                    f"{by_next} all-reduce(s) had started before the next gradient; launch each "
                    f"bucket from the hook as soon as it and every bucket before it are complete")
    return None


def assert_replicas_equal_one_process(params: list[torch.Tensor], reference: torch.Tensor,
                                      where: str) -> None:
    """Every rank's parameters after the steps equal rank 0's, and within 1e-6 of one process."""
    n = len(params)
    for r, p in enumerate(params):
        assert torch.equal(p, params[0]), (
            f"{where}: rank {r} of {n} ended with parameters different from rank 0's (by up to "
            f"{(p - params[0]).abs().max().item():.2e}): finish() must wait for every bucket's "
            f"all-reduce, divide it by the number of ranks and copy it back into each .grad")
    gap = (params[0] - reference).abs().max().item()
    assert gap < 1e-6, (f"{where}, {n} ranks: parameters differ from one process by {gap:.2e}; in "
                        f"finish(), wait, divide the summed bucket by the number of ranks and copy "
                        f"it back into each .grad")


def assert_runs_right(got: list, setup: Setup, models: dict, cases) -> None:
    """Every case of one launch (`got`: each rank's `run_buckets` result): buckets by the rule,
    launched as the rule says, and replicas equal to one process."""
    n = len(got)
    for c, (name, bucket_mb) in enumerate(cases):
        where = f"{name}, bucket_mb={bucket_mb:g} ({bucket_mb * 2**20:g} B)"
        for r in range(n):
            problem = bucket_problem(models[name], bucket_mb, f"{where}, rank {r} of {n}",
                                     got[r][c])
            assert problem is None, problem
        assert_replicas_equal_one_process([run[c]["params"] for run in got],
                                          one_process(setup, models[name], 3), where)

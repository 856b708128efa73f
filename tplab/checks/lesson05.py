"""Checks of exercise 05.1 (solutions/05_pipeline_parallelism.ipynb): the source article's coding
question 2 done right, a model in two stages on two ranks, forward and backward by send/recv.
(05.2's checks, 1F1B, are in lesson05_schedule.py; 05.3's, the bubble, in lesson05_predict.py.)

`run_two_stage` runs on both ranks with the learner's `two_stage_step` passed in. Each case is
compared with the whole model on one process *inside the rank*, before the next case starts: a
wrong answer that sends a tensor of the wrong size makes gloo abort the receiving rank, so the
case whose numbers show the mistake (an output the size of the activation) must stop the run
first. `bounded_launch` turns a launch's deadline into an AssertionError that says the ranks
deadlocked and where they waited, so a learner's deadlock is a failed check, not a hung cell.
What the learner communicates is counted by `tplab.comm.trace()`, which sees calls made
straight to torch.distributed (`dist.send`, `dist.recv`, ...). `batch_isend_irecv` is refused
with the reason (`no_batched_p2p`): on gloo it can hang, so the course never uses it.
"""
from __future__ import annotations

import contextlib
import copy
import io
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tplab import comm
from tplab.checks.forbid import forbidden
from tplab.pp import run_step
from tplab.ranks import WorkerError, launch

__all__ = ["bounded_launch", "two_stage_model", "two_stage_batch", "run_two_stage",
           "TWO_STAGE_CASES", "TWO_STAGE_MORE_CASES", "TWO_STAGE_DEADLOCK",
           "NO_BATCH_ISEND_IRECV", "no_batched_p2p"]

POINT_TO_POINT = {"send", "isend", "recv", "irecv"}


# ---- shared by the lesson's checks ----------------------------------------------------------

def bounded_launch(fn, n, *args, timeout: float, hint: str):
    """tplab.launch(fn, n, *args) on gloo; ranks still running at `timeout` make an AssertionError
    that says where they waited and `hint` (what usually deadlocks this exercise).

    Ranks that never formed their group (a busy machine starting them late) had not reached the
    learner's code: that launch is tried once more with six times the time, not held against it,
    and what it printed is dropped (a notebook's output must not depend on the machine's load).
    """
    try:
        printed = [io.StringIO(), io.StringIO()]
        try:
            with contextlib.redirect_stdout(printed[0]), contextlib.redirect_stderr(printed[1]):
                return launch(fn, n, *args, backend="gloo", timeout=timeout)
        except WorkerError as error:
            if not error.joining:
                raise
            printed = None  # what the ranks that never formed a group said is not the learner's
        finally:
            if printed:
                sys.stdout.write(printed[0].getvalue()), sys.stderr.write(printed[1].getvalue())
        timeout *= 6
        return launch(fn, n, *args, backend="gloo", timeout=timeout)
    except WorkerError as error:
        if not error.stuck:
            raise
        states = [(error.waiting, "waiting in a send, receive or collective"),
                  (error.computing, "computing"), (error.returned, "returned")]
        where = "; ".join(f"{_ranks(ranks)} {state}" for ranks, state in states if ranks)
        raise AssertionError(f"{n} ranks did not finish within the check's {timeout:g} s (the "
                             f"launch's deadline ended them): {where or 'no stack came'}. "
                             f"{hint}") from None


def _ranks(ranks) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))


# ---- exercise 05.1: two_stage_step -----------------------------------------------------------

# (batch, width, classes, seed). The first case's output is the size of the activation, so the
# gradient of the wrong tensor sent back has the right size, and only the numbers tell. The
# second cell's cases: a batch of one, and the output the activation's size again.
TWO_STAGE_CASES = [(6, 8, 8, 0), (5, 6, 3, 1)]
TWO_STAGE_MORE_CASES = [(1, 5, 4, 2), (9, 4, 4, 3)]
TWO_STAGE_DEADLOCK = ("A rank that waits for a message its peer sends only after waiting for one "
                      "from it waits for ever: rank 0 sends the activation before it waits for "
                      "the gradient, and rank 1 receives the activation before anything else.")
NO_BATCH_ISEND_IRECV = (
    "two_stage_step used dist.batch_isend_irecv (or a dist.P2POp for it): on gloo, this course's "
    "backend, batch_isend_irecv can hang for ever (PiPPy issue 1130, PyTorch issue 132644), so "
    "the exercise asks for plain point-to-point calls: dist.send / dist.recv, or dist.isend / "
    "dist.irecv with .wait() on each request before its tensor is used")
NOT_RUN_STEP = {run_step: "two_stage_step called tplab.pp.run_step, which runs a pipeline's step "
                          "for you: write the sends, receives and backward calls yourself"}


@contextlib.contextmanager
def no_batched_p2p():
    """While the block runs, dist.batch_isend_irecv and dist.P2POp raise NO_BATCH_ISEND_IRECV.
    A P2POp made from a name imported earlier (`from torch.distributed import P2POp`) fails
    anyway, in torch's own check of its op (the tracer has wrapped dist.isend): that ValueError
    becomes the same message."""
    def refuse(*args, **kwargs):
        raise AssertionError(NO_BATCH_ISEND_IRECV)

    saved = dist.batch_isend_irecv, dist.P2POp
    dist.batch_isend_irecv = dist.P2POp = refuse
    try:
        yield
    except ValueError as error:
        if "Invalid ``op``" in str(error):
            raise AssertionError(NO_BATCH_ISEND_IRECV) from None
        raise
    finally:
        dist.batch_isend_irecv, dist.P2POp = saved


def two_stage_model(width: int, classes: int, seed: int) -> tuple[nn.Module, nn.Module]:
    """A small classifier cut in two stages: stage 0 on rank 0, stage 1 on rank 1."""
    torch.manual_seed(seed)
    stage0 = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh())
    stage1 = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, classes))
    return stage0, stage1


def two_stage_batch(batch: int, width: int, classes: int, seed: int):
    """Inputs (on rank 0) and class targets (on rank 1) of one batch."""
    g = torch.Generator().manual_seed(100 + seed)
    return torch.randn(batch, width, generator=g), torch.randint(0, classes, (batch,), generator=g)


def one_process(stages, x, target):
    """The whole model on one process: its mean cross-entropy and each stage's gradients."""
    whole = [copy.deepcopy(s) for s in stages]
    loss = F.cross_entropy(whole[1](whole[0](x)), target)
    loss.backward()
    return loss.item(), [[p.grad for p in s.parameters()] for s in whole]


def _factor(got, want):
    # the c that makes c·want closest to got (6.0 when yours is 6 × the reference)
    return float((got.double() * want.double()).sum() / (want.double() ** 2).sum())


def _grad_problem(where, stage, names, grads, refs, batch):
    missing = [n for n, g in zip(names, grads) if g is None]
    if len(missing) == len(names):
        fix = ("rank 0 must receive the activation's gradient from rank 1 and call "
               "h.backward(grad) on the activation h its stage computed" if stage == 0 else
               "rank 1 computes the loss from its stage's output and calls loss.backward()")
        return f"{where}: no parameter of stage {stage} got a gradient (.grad is None): {fix}"
    if missing:
        return f"{where}: {missing} got no gradient: run the whole stage, not part of it"
    for name, got, want in zip(names, grads, refs):
        err = float((got - want).abs().max() / want.abs().max())
        if err <= 1e-5:
            continue
        came = f"relative error {err:.2g}"
        if stage == 0 and not got.abs().max() > 0:
            why = ("they are all zero: the gradient rank 1 sent back is zero. Rank 1 must "
                   "receive the activation with requires_grad_() before using it, so that "
                   "loss.backward() fills its .grad; send back that .grad")
        elif abs(_factor(got, want) - batch) < 1e-3 * batch:
            came += f": yours is {batch} × the reference (the batch size)"
            why = ("the loss is summed over the batch where the reference averages it: use "
                   "F.cross_entropy's default reduction='mean'")
        elif stage == 0:
            why = ("rank 1 must send back the gradient of the activation it received "
                   "(h.grad, shape of the activation), not of its output; rank 0 backpropagates "
                   "it through stage 0 with h.backward(grad)")
        else:
            why = ("stage 1 must run on the activation received from rank 0, and the loss is "
                   "F.cross_entropy(output, target) with the target given to rank 1")
        return (f"{where}: the gradient of stage {stage}'s {name} should equal the one process's "
                f"within 1e-5 (relative), came {came}: {why}")
    return None


def _loss_problem(where, loss, ref, batch):
    if loss is None:
        return (f"{where}: two_stage_step returned None on rank 1; return the loss there (rank 1 "
                f"computes it, from stage 1's output and its target)")
    try:
        value = float(loss)
    except (TypeError, ValueError, RuntimeError):
        return f"{where}: return the loss as a number or a 0-d tensor, came {loss!r:.60}"
    if abs(value - ref) <= 1e-5 * abs(ref):
        return None
    sums = abs(value - batch * ref) <= 1e-5 * batch * abs(ref)
    return (f"{where}: the loss should be {ref:.6g} (the whole model's on one process), came "
            f"{value:.6g}" + (f" = {batch} × it: average over the batch, don't sum" if sums else
                              ": stage 1 runs on the activation received from rank 0, and the "
                              "loss uses the target given to rank 1 (not one from elsewhere)"))


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _traffic_problem(where, rank, calls, nbytes):
    # exactly one message each way of the activation's size: an extra one (the loss sent back,
    # the activation twice) is wrong traffic even where the numbers come out right
    others = sorted({op for op, _ in calls} - POINT_TO_POINT)
    if others:
        return (f"{where}: you called {others}: between two stages the activation and its "
                f"gradient go by point-to-point messages (dist.send / dist.recv, or "
                f"dist.isend / dist.irecv) only")
    sends = [b for op, b in calls if op in ("send", "isend")]
    recvs = [b for op, b in calls if op in ("recv", "irecv")]
    if (sends, recvs) == ([nbytes], [nbytes]):
        return None
    what = ("send the activation to rank 1 once and receive its gradient once" if rank == 0 else
            "receive the activation once and send its gradient back once")
    more = len(sends) + len(recvs) > 2
    return (f"{where}: rank {rank} should {what}, {nbytes} bytes each (batch × width fp32 "
            f"numbers), the trace shows sends of {sends} and receives of {recvs} bytes"
            + (": no activation crossed between the stages" if not calls else "")
            + (": nothing else crosses (only rank 1 needs the loss: it returns it, rank 0 "
               "returns None)" if more else ""))


def run_two_stage(two_stage_step, cases, check: str | None):
    """On each of 2 ranks: the learner's step for each case, compared with one process.

    check "numbers" or "traffic" (the same test; the names are the two cells'): loss and
    gradients first, then exactly one point-to-point message each way of the activation's size,
    nothing else (wrong traffic earns nothing, even with the right numbers); None: no
    assertion (for pictures). Returns
    per case {"errors": {parameter: relative error}, "loss", "ref_loss", "calls": [(op, bytes)]}.
    """
    rank = dist.get_rank()
    out = []
    for batch, width, classes, seed in cases:
        stages = two_stage_model(width, classes, seed)
        x, target = two_stage_batch(batch, width, classes, seed)
        ref_loss, ref_grads = one_process(stages, x, target)
        mine, kept = stages[rank], (x.clone(), target.clone())
        with comm.trace() as trace, no_batched_p2p(), forbidden(
                getattr(two_stage_step, "__globals__", {}), NOT_RUN_STEP):
            loss = two_stage_step(mine, x if rank == 0 else None, target if rank == 1 else None,
                                  (batch, width))
        names = [n for n, _ in mine.named_parameters()]
        grads = [p.grad for p in mine.parameters()]
        calls = [(c.op, c.nbytes) for c in trace.calls]
        where = f"batch {batch}, width {width}, {classes} classes, rank {rank}"
        if check:
            numbers = (_grad_problem(where, rank, names, grads, ref_grads[rank], batch)
                       or (rank == 1 and _loss_problem(where, loss, ref_loss, batch)))
            traffic = _traffic_problem(where, rank, calls, batch * width * 4)
            if numbers and traffic:   # what the messages were tells more about wrong numbers
                numbers += f". Also, {traffic.split(': ', 1)[1]}"
            problem = numbers or traffic
            if not torch.equal(x, kept[0]) or not torch.equal(target, kept[1]):
                problem = problem or f"{where}: your step changed its input x or target in place"
            assert not problem, problem
        errors = {n: (float("inf") if g is None else float((g - r).abs().max() / r.abs().max()))
                  for n, g, r in zip(names, grads, ref_grads[rank])}
        out.append({"errors": errors, "loss": _number(loss),
                    "ref_loss": ref_loss, "calls": calls})
    return out

"""Checks of exercises 08.1-08.3 (solutions/08_interview.ipynb): the source article's two coding
questions fixed on real ranks, and the bank's deadlock fixed under a deadline. 08.4 and 08.5,
the mock interview, are checked in `lesson08_mock` (re-exported here).

Why these checks:

* 08.1-08.3 run the learner's function on real gloo ranks through the bank's harness
  (`tplab.interview.verdict.check_source`), on inputs drawn afresh at every launch: the shared
  ones from a nonce of os.urandom, each rank's own ones (its rows, its layer, its tensor) drawn
  by that rank alone. So no rank can rebuild another's data or the reference (a seed, a helper
  of the bank): it must communicate. Every rank's result is compared with one process on the
  same inputs.
* 08.1 on three cases (`dp_cases`): 2 ranks, rows 4+4; 3 ranks, rows 3+3+2, where the mean of
  the ranks' mean gradients is NOT the batch's mean gradient, so "all-reduce, divide by the
  world size" fails and the message says why; and 2 ranks on a batch size drawn per check
  (9-15), so a hard-coded 8 fails. Hooks on the model's layers (not its call, which
  `model.forward` or a loop over the layers would pass by) require each rank to run it on its
  own rows only; no message may carry those rows (tensors, or objects such as x.tolist()); the
  collectives must carry at least the gradients' bytes; and the gradient autograd computes on a
  rank must be a multiple of its own rows' (`verdict._dp_problem`): gathering the data fails.
* 08.2 on 2 ranks, a batch of a drawn size (never 8) and stages of drawn widths (never the
  example's Linear(4, 6), Linear(6, 1): `harness.mp_widths`, so a buffer typed in as
  (len(x), 6) fails): both stages' forward outputs (a hook),
  both layers' gradients, and the traffic: one activation forward, one gradient back, point to
  point (shipping the weights instead fails).
* 08.3 on 2 and 3 ranks (on 2, rank + 1 = rank - 1: only 3 tests the ring's direction) under a
  deadline of DEADLINE s, random payloads, and exactly one send and one receive per rank, both
  completed, no collective.
* The bank's model answers (`bugs.fixed_*`) raise while the learner's code runs
  (`forbid.forbidden` swaps the names, and each calls `forbid.guard` first, which catches a
  partial or an exec'd copy; the ranks are forked, so they inherit the switch).

A stub left in place raises NotImplementedError on a rank; the check raises it again, so the
grader reports the exercise "not attempted" rather than failed. Slips are named by comparing
the ranks' results with the slips computed in one process from the same inputs (`dp_slips`).
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from tplab.checks.forbid import forbidden
from tplab.checks.lesson08_mock import CHOICES, NUMBERS, check_choices, check_numbers, show
from tplab.grading.cells import STUB_PHRASE
from tplab.interview import bugs, by_id, harness

__all__ = ["DEADLINE", "NUMBERS", "CHOICES", "RING_WORLDS", "show", "buggy_source",
           "shard_rows", "dp_cases", "dp_slips", "dp_table", "mp_table", "check_data_parallel",
           "check_model_parallel", "check_pass_right", "check_numbers", "check_choices"]

DEADLINE = by_id("dbg-deadlock").code.timeout   # s: the bank's deadlock item's own (10 s)
RING_WORLDS = (2, 3)
_NOT_YOURS = ("{fn} called tplab.interview.bugs.{fixed}, the bank's model answer: write the "
              "fix yourself")


def _draw(values) -> int:
    return values[int.from_bytes(os.urandom(2), "little") % len(values)]


def buggy_source(task: str) -> str:
    """The bank's buggy function for `task`, as the learner reads it."""
    return bugs.source(f"buggy_{task}")


def shard_rows(world: int, rows: int = 8) -> list[int]:
    """The rows each rank holds of a `rows`-row batch (`X.chunk(world)`)."""
    return harness.shard_sizes(rows, world)


def dp_cases() -> tuple[tuple[int, int], ...]:
    """08.1's (world, rows): 4+4, 3+3+2, then 2 ranks on a size drawn now from 9 to 15."""
    return (2, 8), (3, 8), (2, _draw(range(9, 16)))


def _case(world: int, rows: int) -> str:
    return f"{world} ranks (rows {'+'.join(map(str, shard_rows(world, rows)))})"


def _stub(result) -> None:
    if "NotImplementedError" in result.message and STUB_PHRASE in result.message:
        raise NotImplementedError(result.message.split("NotImplementedError: ", 1)[-1])


def _run(task: str, fn, namespace: dict, cases, timeout: float) -> dict:
    """{(world, rows): CheckResult} for each case in turn (stopping at the first failure),
    with the bank's fixed function switched off."""
    fixed = f"fixed_{task}"
    message = _NOT_YOURS.format(fn=getattr(fn, "__name__", task), fixed=fixed)
    runs = {}
    with forbidden(namespace, {getattr(bugs, fixed): message}):
        for world, rows in cases:
            runs[world, rows] = bugs.check_source(task, fn, world, timeout, rows=rows)
            if not runs[world, rows].ok:
                break
    for result in runs.values():
        _stub(result)
    return runs


def _kept(results) -> list[dict]:
    return [r["inputs"] for r in results]


def dp_slips(kept: list[dict]) -> dict[str, list[list[torch.Tensor]]]:
    """{slip: every rank's gradients} for the usual mistakes, computed in one process from the
    ranks' inputs (`kept`: each rank's model state and rows)."""
    world, rows = len(kept), sum(len(k["x"]) for k in kept)
    model = harness._mlp()
    model.load_state_dict(kept[0]["state"])
    own = [list(torch.autograd.grad(F.mse_loss(model(k["x"]), k["y"]), list(model.parameters())))
           for k in kept]
    summed = [sum(g) for g in zip(*own)]
    right = harness._reference("data_parallel_gradients", 0, kept)
    return {"own": own, "summed": [summed] * world,
            "mean_of_means": [[g / world for g in summed]] * world,
            "eight_rows": [[g * rows / 8 for g in right]] * world}


def _equal(per_rank, want) -> bool:
    return all(len(got) == len(w) and all(isinstance(g, torch.Tensor) and g.shape == v.shape
                                          and torch.allclose(g, v, rtol=1e-5, atol=1e-6)
                                          for g, v in zip(got, w))
               for got, w in zip(per_rank, want))


def _dp_hint(result, world: int, rows: int) -> str:
    numbers = "differs from" in result.message    # the failures a slip of the numbers explains
    if result.results is None or not (numbers or "fewer than the" in result.message):
        if "returned 1 tensors" in result.message:
            return ("\n  One tensor is the gradient with respect to the input (the article's "
                    "tf.gradients(output, input)); return one gradient per weight, in "
                    "model.parameters() order.")
        return ""
    got = [r["returned"] for r in result.results]
    slips = dp_slips(_kept(result.results))
    shards = ", ".join(map(str, shard_rows(world, rows)))
    if _equal(got, slips["own"]):
        return ("\n  Each rank returned its own shard's gradient: the ranks' gradients are never "
                "combined.")
    if not numbers:
        return ""
    if _equal(got, slips["summed"]):
        return (f"\n  The ranks' gradients are summed: {world} mean gradients added up are "
                f"{world} times too large.")
    if _equal(got, slips["mean_of_means"]):
        return (f"\n  That is the mean of the ranks' mean gradients, which equals the batch's "
                f"mean only when the shards are equal; here they hold {shards} rows of the "
                f"{rows}.")
    if rows != 8 and _equal(got, slips["eight_rows"]):
        return (f"\n  That is {rows}/8 times the batch's mean gradient: is the batch size "
                f"hard-coded as 8? Here it is {rows}: all-reduce len(x) to find it.")
    return ""


def check_data_parallel(fn, namespace) -> dict:
    """`fn(model, x, y)` on every rank of each of `dp_cases()` (x, y: the rank's rows of one
    batch, drawn afresh) must return the gradient of the whole batch's mean loss for each
    weight, equal to one process within 1e-5, having run the model on its own rows only.
    Returns {"results": {(world, rows): every rank's results}}."""
    runs = _run("data_parallel_gradients", fn, namespace, dp_cases(), DEADLINE)
    for (world, rows), result in runs.items():
        assert result.ok, (f"data_parallel_gradients on {_case(world, rows)}: {result.message}"
                           + _dp_hint(result, world, rows))
    return {"results": {case: result.results for case, result in runs.items()}}


def dp_table(run: dict) -> str:
    """Per case and weight, the largest |gradient - one process| over the ranks: yours (from
    `check_data_parallel`) beside the slips'."""
    names = [n for n, _ in harness._mlp().named_parameters()]
    heads = ("yours", "never combined", "summed", "mean of means")
    lines = []
    for (world, rows), results in run["results"].items():
        kept = _kept(results)
        slips, yours = dp_slips(kept), [r["returned"] for r in results]
        reference = harness._reference("data_parallel_gradients", 0, kept)
        lines.append(f"{_case(world, rows)}: largest |gradient - one process| over the ranks")
        lines.append(f"  {'weight':<9}" + "".join(f"{h:>16}" for h in heads))
        for k, (name, ref) in enumerate(zip(names, reference)):
            errors = [max((g[k] - ref).abs().max().item() for g in per_rank)
                      for per_rank in (yours, slips["own"], slips["summed"],
                                       slips["mean_of_means"])]
            shown = ["<= 1e-6" if e <= 1e-6 else f"{e:.2e}" for e in errors]
            lines.append(f"  {name:<9}" + "".join(f"{x:>16}" for x in shown))
    return "\n".join(lines)


def mp_table(run: dict) -> str:
    """Each rank's forward output, gradients and messages (from `check_model_parallel`)
    beside one process's on the same inputs."""
    lines, kept = [], _kept(run["results"])
    for rank, got in enumerate(run["results"]):
        want = harness.reference_forward("model_parallel_gradients", rank, kept)
        reference = harness._reference("model_parallel_gradients", rank, kept)
        sent = [c["nbytes"] for c in got["traffic"] if c["op"] in ("send", "isend")]
        received = [c["nbytes"] for c in got["traffic"] if c["op"] in ("recv", "irecv")]
        lines.append(f"rank {rank}, the {('first', 'second')[rank]} layer: forward output "
                     f"{tuple(got['forward'].shape)}, largest difference from one process "
                     f"{(got['forward'] - want).abs().max().item():.1e}; sent {sent} bytes, "
                     f"received {received}")
        names = [n for n, _ in harness._stages()[rank].named_parameters()]
        for name, g, ref in zip(names, got["returned"], reference):
            lines.append(f"  {name + ' gradient':<16}{str(tuple(g.shape)):<8} norm "
                         f"{g.norm().item():.4f} (one process {ref.norm().item():.4f})")
    return "\n".join(lines)


_MP_HINTS = (   # (a phrase of the harness's message, the hint), the first that matches
    ("no attribute 'gradient'", "nn.Module has no .gradient (the article's call): let autograd "
                                "do the backward (loss.backward() on rank 1, "
                                "hidden.backward(grad) on rank 0)"),
    ("mat1 and mat2", "the second layer takes the first layer's activations, sent by rank 0, "
                      "not the raw input"),
    ("does not require grad", "the tensor you call backward on is cut from the graph (detached): "
                              "on rank 0 keep the stage's output itself"),
    ("SIGABRT", "gloo aborts a rank whose receive buffer is smaller than the tensor sent to it: "
                "shape each buffer like what is sent, the activation both ways, (len(x), "
                "stage.in_features) on rank 1 (the batch size and the widths are drawn at each "
                "check: read them from x and the stage, never type them in)"),
    ("got NoneType", "a layer has no gradient: rank 1 must send the activation's gradient back, "
                     "and rank 0 backpropagate it through its layer"),
    ("rank 0: the first layer's", "rank 0 must backpropagate the gradient rank 1 sends back, "
                                  "not a loss of its own"),
)


def _mp_hint(result) -> str:
    if result.results is not None:
        kept = _kept(result.results)
        rows, (width, inputs) = len(kept[0]["x"]), kept[0]["state"]["weight"].shape
        sent = [[c["nbytes"] for c in r["traffic"] if c["op"] in ("send", "isend")]
                for r in result.results]
        if sent[1] == [rows * 4]:
            return ("\n  Hint: rank 1 sent back a (len(x), 1) tensor, the gradient of the loss "
                    "with respect to its layer's output; rank 0 needs it with respect to the "
                    f"activation it received, (len(x), {width}): hidden.grad.")
        if sum(sent[0]) == (width * inputs + width) * 4:
            return ("\n  Hint: rank 0 sent its layer's weights: the stages exchange "
                    "activations, not weights (rank 0 sends its layer's output forward, and "
                    "rank 1 sends that output's gradient back).")
    found = [hint for phrase, hint in _MP_HINTS if phrase in result.message]
    return f"\n  Hint: {found[0]}." if found else ""


def check_model_parallel(fn, namespace) -> dict:
    """`fn(stage, x, y)` on 2 gloo ranks (rank 0 the first layer, rank 1 the second and the
    loss), on a batch whose size is drawn now (5-12, never 8), through layers whose widths the
    launch draws (`harness.mp_widths`, never the example's 4 and 6): every stage's forward output
    and both layers' gradients equal one process on the whole model, and the ranks exchange
    one activation and its gradient. Returns every rank's results."""
    rows = _draw((5, 6, 7, 9, 10, 11, 12))
    result = _run("model_parallel_gradients", fn, namespace, ((2, rows),), DEADLINE)[2, rows]
    assert result.ok, (f"model_parallel_gradients on 2 ranks, {rows} rows: {result.message}"
                       + _mp_hint(result))
    return {"results": result.results}


def _ring_hint(result, world: int) -> str:
    if result.results is None or "differs from" not in result.message:
        return ""
    got = [r["returned"][0] for r in result.results]
    sent = [r["inputs"]["t"] for r in result.results]
    if all(isinstance(t, torch.Tensor) and t.shape == (4,) for t in got):
        if all(torch.equal(t, sent[(r + 1) % world]) for r, t in enumerate(got)):
            return "\n  Each rank received from rank + 1: the ring turns the wrong way."
        if all(torch.equal(t, sent[r]) for r, t in enumerate(got)):
            return "\n  Each rank returned its own tensor: nothing was received."
    return ""


def check_pass_right(fn, namespace, timeout: float = DEADLINE) -> dict:
    """`fn(t)` on 2, then 3 gloo ranks (t: random, drawn by each rank) must return what
    rank - 1 sent, before `timeout` s, with one send and one receive per rank, both completed
    and point to point. Returns {world: every rank's (sent, received)}."""
    runs = _run("pass_right", fn, namespace, [(w, 8) for w in RING_WORLDS], timeout)
    for (world, _), result in runs.items():
        hung = "timed out" in result.message.lower()
        assert not hung, (
            f"pass_right on {world} ranks did not finish within the {timeout:g} s deadline: it "
            f"still deadlocks (each rank waits in a blocking call for a peer that is waiting "
            f"too). The launch says: {result.message}")
        assert result.ok, f"pass_right on {world} ranks: {result.message}" \
            + _ring_hint(result, world)
    return {w: [(r["inputs"]["t"], r["returned"][0]) for r in runs[w, rows].results]
            for w, rows in runs}

"""Checks of exercises 08 (solutions/08_interview.ipynb): the source article's two coding
questions fixed on real ranks, the bank's deadlock fixed under a deadline, and a mock interview
of numeric and choice items from the bank (`tplab.interview`).

Why these checks:

* 08.1-08.3 run the learner's function on real gloo ranks through the bank's own harness
  (`tplab.interview.bugs.check_source`: one launch per world, every rank's result compared with
  one process). 08.1 on 2 ranks (shards of 4 and 4 rows) and 3 ranks (3, 3 and 2 rows): there
  the mean of the ranks' mean gradients is NOT the global batch's mean gradient, so the rule
  "all-reduce, divide by the world size" (right for equal shards, DDP's) fails, and the message
  says why. 08.2 on 2 ranks: both stages' forward outputs (a hook) and both layers' gradients.
  08.3 on 2 and 3 ranks (on 2, rank + 1 = rank - 1: only 3 tests the ring's direction) under a
  deadline of DEADLINE s, so a fix that still deadlocks fails by the deadline, saying so.
  The bank's model answers (`bugs.fixed_*`) are switched off while the learner's code runs
  (`forbid.forbidden`; the ranks are forked, so they inherit the switch).
* 08.4 and 08.5 check each answer with the item's own checker (`Item.check`: the stated
  tolerance for a number, the letter for a choice), all or nothing; the message lists every
  wrong number with the item's explanation and every wrong letter with that option's reason.

A stub left in place raises NotImplementedError on a rank; the check raises it again, so the
grader reports the exercise "not attempted" rather than failed. Slips are named by comparing
the ranks' results with the slips computed in one process (`dp_slips`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tplab.checks.forbid import forbidden
from tplab.grading.cells import STUB_PHRASE
from tplab.interview import bugs, by_id, score
from tplab.interview.items import LETTERS, parse_number

__all__ = ["DEADLINE", "NUMBERS", "CHOICES", "DP_WORLDS", "RING_WORLDS", "show", "shard_rows",
           "dp_slips", "dp_table", "mp_table", "check_data_parallel", "check_model_parallel",
           "check_pass_right", "check_numbers", "check_choices"]

DEADLINE = by_id("dbg-deadlock").code.timeout   # s: the bank's deadlock item's own (10 s)
DP_WORLDS = (2, 3)                # 8 rows: 4+4, then 3+3+2
RING_WORLDS = (2, 3)
# one item per topic an interviewer computes with: ring all-reduce time, ZeRO memory, TP
# traffic per layer, the pipeline bubble, KV-cache bytes, 70B decode time on 8×H100
NUMBERS = ("dp-grad-all-reduce", "dp-zero3-70b", "tp-decode-comm", "pp-bubble", "mt-kv-batch",
           "mt-decode-ms")
CHOICES = ("coll-halves", "coll-ring-scaling", "tp-f-g", "pp-1f1b-vs-gpipe",
           "sv-continuous-batching", "mt-70b-training")
_NOT_YOURS = ("{fn} called tplab.interview.bugs.{fixed}, the bank's model answer: write the "
              "fix yourself")


def show(ids, lang: str = "both") -> None:
    """Print each item's question (English, then Chinese) and a choice item's options."""
    for number, item in enumerate(by_id(i) for i in ids):
        print(f"[{item.id}]")
        for text in ([item.question_en, item.question_zh] if lang == "both"
                     else [item.question(lang)]):
            print(f"  {text}")
        for letter, option in zip(LETTERS, item.options):
            print(f"    {letter}) {option.text_en}  /  {option.text_zh}")
        if number < len(ids) - 1:
            print()


def shard_rows(world: int) -> list[int]:
    """The rows of the harness's 8-row batch each rank holds (`x.chunk(world)`)."""
    return [len(part) for part in bugs._batch()[0].chunk(world)]


def _stub(result) -> None:
    if "NotImplementedError" in result.message and STUB_PHRASE in result.message:
        raise NotImplementedError(result.message.split("NotImplementedError: ", 1)[-1])


def _run(task: str, fn, namespace: dict, worlds, timeout: float) -> dict:
    """{world: CheckResult} on each world in turn (stopping at the first failure), with the
    bank's fixed function switched off."""
    fixed = f"fixed_{task}"
    message = _NOT_YOURS.format(fn=getattr(fn, "__name__", task), fixed=fixed)
    runs = {}
    with forbidden(namespace, {getattr(bugs, fixed): message}):
        for world in worlds:
            runs[world] = bugs.check_source(task, fn, world, timeout)
            if not runs[world].ok:
                break
    for result in runs.values():
        _stub(result)
    return runs


def dp_slips(world: int) -> dict[str, list[list[torch.Tensor]]]:
    """{slip: every rank's gradients} for the usual mistakes, computed in one process."""
    x, y = bugs._batch()
    own = []
    for xs, ys in zip(x.chunk(world), y.chunk(world)):
        model = bugs._mlp()
        own.append(list(torch.autograd.grad(F.mse_loss(model(xs), ys), list(model.parameters()))))
    summed = [sum(g) for g in zip(*own)]
    return {"own": own, "summed": [summed] * world,
            "mean_of_means": [[g / world for g in summed]] * world}


def _equal(per_rank, want) -> bool:
    return all(len(got) == len(w) and all(isinstance(g, torch.Tensor) and g.shape == v.shape
                                          and torch.allclose(g, v, rtol=1e-5, atol=1e-6)
                                          for g, v in zip(got, w))
               for got, w in zip(per_rank, want))


def _dp_hint(result, world: int) -> str:
    if result.results is None:
        if "returned 1 tensors" in result.message:
            return ("\n  One tensor is the gradient with respect to the input (the article's "
                    "tf.gradients(output, input)); return one gradient per weight, in "
                    "model.parameters() order.")
        return ""
    got = [r["returned"] for r in result.results]
    slips = dp_slips(world)
    rows = ", ".join(map(str, shard_rows(world)))
    if _equal(got, slips["own"]):
        return ("\n  Each rank returned its own shard's gradient: the ranks' gradients are never "
                "combined.")
    if _equal(got, slips["summed"]):
        return (f"\n  The ranks' gradients are summed: {world} mean gradients added up are "
                f"{world} times too large.")
    if _equal(got, slips["mean_of_means"]):
        return (f"\n  That is the mean of the ranks' mean gradients, which equals the batch's "
                f"mean only when the shards are equal; here they hold {rows} rows of the "
                f"{sum(shard_rows(world))}.")
    return ""


def check_data_parallel(fn, namespace) -> dict:
    """`fn(model, x, y)` on every rank of 2, then 3 gloo ranks (x, y: the rank's rows of one
    8-row batch) must return the gradient of the whole batch's mean loss for each weight,
    equal to one process within 1e-5. Returns {world: every rank's gradients} and the
    one-process reference."""
    runs = _run("data_parallel_gradients", fn, namespace, DP_WORLDS, DEADLINE)
    for world, result in runs.items():
        assert result.ok, (f"data_parallel_gradients on {world} ranks (rows "
                           f"{'+'.join(map(str, shard_rows(world)))}): {result.message}"
                           + _dp_hint(result, world))
    reference = bugs._reference("data_parallel_gradients", 0, 2)
    return {"reference": reference,
            "results": {w: [r["returned"] for r in runs[w].results] for w in runs}}


def dp_table(run: dict) -> str:
    """Per world and weight, the largest |gradient - one process| over the ranks: yours (from
    `check_data_parallel`) beside the slips'."""
    names = [n for n, _ in bugs._mlp().named_parameters()]
    heads = ("yours", "never combined", "summed", "mean of means")
    lines = []
    for world, yours in run["results"].items():
        slips = dp_slips(world)
        lines.append(f"{world} ranks, rows {'+'.join(map(str, shard_rows(world)))}: largest "
                     f"|gradient - one process| over the ranks")
        lines.append(f"  {'weight':<9}" + "".join(f"{h:>16}" for h in heads))
        for k, (name, ref) in enumerate(zip(names, run["reference"])):
            errors = [max((g[k] - ref).abs().max().item() for g in per_rank)
                      for per_rank in (yours, slips["own"], slips["summed"],
                                       slips["mean_of_means"])]
            shown = ["<= 1e-6" if e <= 1e-6 else f"{e:.2e}" for e in errors]
            lines.append(f"  {name:<9}" + "".join(f"{x:>16}" for x in shown))
    return "\n".join(lines)


def mp_table(run: dict) -> str:
    """Each rank's forward output and gradients (from `check_model_parallel`) beside one
    process's."""
    lines = []
    for rank, got in enumerate(run["results"]):
        want = bugs.reference_forward("model_parallel_gradients", rank)
        lines.append(f"rank {rank}, the {('first', 'second')[rank]} layer: forward output "
                     f"{tuple(got['forward'].shape)}, largest difference from one process "
                     f"{(got['forward'] - want).abs().max().item():.1e}")
        names = [n for n, _ in bugs._stages()[rank].named_parameters()]
        for name, g, ref in zip(names, got["returned"], run["reference"][rank]):
            lines.append(f"  {name + ' gradient':<16}{str(tuple(g.shape)):<8} norm "
                         f"{g.norm().item():.4f} (one process {ref.norm().item():.4f})")
    return "\n".join(lines)


_MP_HINTS = (   # (a phrase of the harness's message, the hint), the first that matches
    ("no attribute 'gradient'", "nn.Module has no .gradient (the article's call): let autograd "
                                "do the backward (loss.backward() on rank 1, "
                                "hidden.backward(grad) on rank 0)"),
    ("mat1 and mat2", "the second layer takes the first layer's 6 activations, sent by rank 0, "
                      "not the raw input"),
    ("does not require grad", "the tensor you call backward on is cut from the graph (detached): "
                              "on rank 0 keep the stage's output itself"),
    ("got NoneType", "a layer has no gradient: rank 1 must send the activation's gradient back, "
                     "and rank 0 backpropagate it through its layer"),
    ("rank 0: the first layer's", "rank 0 must backpropagate the gradient rank 1 sends back, "
                                  "not a loss of its own"),
)


def _mp_hint(message: str) -> str:
    found = [hint for phrase, hint in _MP_HINTS if phrase in message]
    return f"\n  Hint: {found[0]}." if found else ""


def check_model_parallel(fn, namespace) -> dict:
    """`fn(stage, x, y)` on 2 gloo ranks (rank 0 the first layer, rank 1 the second and the
    loss): every stage's forward output and both layers' gradients equal one process on the
    whole model. Returns each rank's gradients and forward output."""
    result = _run("model_parallel_gradients", fn, namespace, (2,), DEADLINE)[2]
    assert result.ok, f"model_parallel_gradients on 2 ranks: {result.message}" \
        + _mp_hint(result.message)
    return {"results": result.results,
            "reference": [bugs._reference("model_parallel_gradients", r, 2) for r in (0, 1)]}


def _ring_hint(result, world: int) -> str:
    if result.results is None:
        return ""
    got = [r["returned"][0] for r in result.results]
    if all(isinstance(t, torch.Tensor) and t.shape == (4,) for t in got):
        if all(torch.equal(t, torch.full((4,), float((r + 1) % world))) for r, t in
               enumerate(got)):
            return "\n  Each rank received from rank + 1: the ring turns the wrong way."
        if all(torch.equal(t, torch.full((4,), float(r))) for r, t in enumerate(got)):
            return "\n  Each rank returned its own tensor: nothing was received."
    return ""


def check_pass_right(fn, namespace, timeout: float = DEADLINE) -> dict:
    """`fn(t)` on 2, then 3 gloo ranks must return what rank - 1 sent, before `timeout` s: a
    fix that still deadlocks fails at the deadline. Returns {world: every rank's tensor}."""
    runs = _run("pass_right", fn, namespace, RING_WORLDS, timeout)
    for world, result in runs.items():
        hung = "timed out" in result.message.lower()
        assert not hung, (
            f"pass_right on {world} ranks did not finish within the {timeout:g} s deadline: it "
            f"still deadlocks (each rank waits in a blocking call for a peer that is waiting "
            f"too). The launch says: {result.message}")
        assert result.ok, f"pass_right on {world} ranks: {result.message}" \
            + _ring_hint(result, world)
    return {w: [r["returned"][0] for r in runs[w].results] for w in runs}


def _check_items(answers, ids, wrong_line, what: str):
    assert isinstance(answers, dict), (
        f"answers should be a dict {{item id: {what}}}, got {type(answers).__name__}")
    unknown = sorted(set(answers) - set(ids))
    assert not unknown, f"answers has ids that are not in this interview: {unknown}"
    missing = [i for i in ids if answers.get(i) in (None, "")]
    assert not missing, f"no answer yet for {', '.join(missing)}: give a {what} for each"
    items = [by_id(i) for i in ids]
    wrong = [item for item in items if not item.check(answers[item.id])]
    assert not wrong, (f"{len(wrong)} of {len(items)} answers are wrong:\n"
                       + "\n".join(wrong_line(item, answers[item.id]) for item in wrong))
    return score(items, answers)


def _number_line(item, answer) -> str:
    value = parse_number(answer)
    got = (f"{answer!r}, not a number" if value is None
           else f"{value:.4g} {item.numeric.unit}".strip())
    return (f"- {item.id}: you gave {got} (accepted within ±{item.numeric.rtol:.0%} of the "
            f"answer). {item.explanation}")


def _choice_line(item, answer) -> str:
    reason = item.option_reason(answer) or (f"not one of the options "
                                            f"{', '.join(LETTERS[:len(item.options)])}")
    return f"- {item.id}: you chose {str(answer).strip()!r}: {reason}"


def check_numbers(answers, ids=NUMBERS):
    """Every numeric item of `ids` answered (a number, or text such as '1.75 GB') within its
    tolerance; returns the score card."""
    return _check_items(answers, ids, _number_line, "number")


def check_choices(answers, ids=CHOICES):
    """Every choice item of `ids` answered with its correct letter; returns the score card."""
    return _check_items(answers, ids, _choice_line, "letter")

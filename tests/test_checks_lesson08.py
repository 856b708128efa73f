"""The machinery of exercise 08's checks: each check fails on the stub, passes the solution,
gives nothing for the bank's own fix (by name, through a partial, or exec'd from its source),
names the slip, and rejects what a reviewer got through: rebuilt or gathered data, a hard-coded
batch size or activation width, shipped weights, collectives or arithmetic for the ring, a send
never waited. The numeric items' slips fall outside their tolerances, no failure message or
choice option states an answer, and an answer read from the bank (or computed by the library)
earns nothing however right it is. The ranks are real (gloo, forked: well under a second a
launch); the graded runs are in test_course_grading and test_wrong_answers."""
import functools
import re
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from tplab.checks import lesson08, lesson08_mock
from tplab.checks.lesson08_mock import FORMULAS, SLIPS
from tplab.interview import bugs, by_id, harness, ledger
from tplab.interview.bugs import fixed_data_parallel_gradients, fixed_pass_right


def data_parallel_gradients(model, x, y):      # the solution's
    rows = torch.tensor([float(len(x))])
    dist.all_reduce(rows)
    loss = F.mse_loss(model(x), y) * len(x) / rows.item()
    grads = torch.autograd.grad(loss, list(model.parameters()))
    for g in grads:
        dist.all_reduce(g)
    return list(grads)


def model_parallel_gradients(stage, x, y):     # the solution's
    if dist.get_rank() == 0:
        hidden = stage(x)
        dist.send(hidden.detach(), dst=1)
        grad = torch.empty_like(hidden)
        dist.recv(grad, src=1)
        hidden.backward(grad)
    else:
        hidden = torch.empty(len(x), stage.in_features)
        dist.recv(hidden, src=0)
        hidden.requires_grad_()
        F.mse_loss(stage(hidden), y).backward()
        dist.send(hidden.grad, dst=0)
    return [p.grad for p in stage.parameters()]


WRONG = Path(__file__).with_name("wrong_answers") / "08_interview"


@pytest.fixture(autouse=True)
def fresh_kernel(monkeypatch):
    """Each test starts as a fresh kernel: no answer read, none earned, no cell run."""
    monkeypatch.setattr(ledger, "_READ", {})
    monkeypatch.setattr(ledger, "_EARNED", set())
    monkeypatch.setattr(lesson08_mock, "_executed_sources", lambda: [])


def model_answers(ids) -> dict:
    """The bank's answers, read as the checker reads them (not noted as looked up)."""
    with ledger.unrecorded():
        return {i: by_id(i).model_answer() for i in ids}


def wrong(exercise: str, mistake: str):
    """The function a wrong answer kept in tests/wrong_answers defines (graded there through the
    grader; here its hint is checked), run as the exercise's cell runs it."""
    namespace = {"torch": torch, "dist": dist, "F": F}
    exec((WRONG / exercise / f"{mistake}.py").read_text(), namespace)
    return next(v for k, v in namespace.items() if callable(v) and k in (
        "model_parallel_gradients", "pass_right", "data_parallel_gradients"))


def stub(*args):
    raise NotImplementedError("exercise ex08_data_parallel: write your code here")


def test_data_parallel_passes_the_solution_on_uneven_and_drawn_shards():
    assert lesson08.shard_rows(3) == [3, 3, 2]
    cases = lesson08.dp_cases()
    assert cases[:2] == ((2, 8), (3, 8)) and 9 <= cases[2][1] <= 15
    run = lesson08.check_data_parallel(data_parallel_gradients, {})
    assert len(run["results"]) == 3 and len(run["results"][3, 8]) == 3
    assert "<= 1e-6" in lesson08.dp_table(run)


def test_data_parallel_stub_is_not_attempted_and_the_bank_fix_scores_zero():
    with pytest.raises(NotImplementedError, match="write your code here"):
        lesson08.check_data_parallel(stub, {})

    def borrowed(model, x, y):
        return fixed_data_parallel_gradients(model, x, y)

    with pytest.raises(AssertionError, match="the bank's model answer"):
        lesson08.check_data_parallel(borrowed, globals())


def test_data_parallel_names_the_slips():
    def by_world(model, x, y):
        grads = torch.autograd.grad(F.mse_loss(model(x), y), list(model.parameters()))
        for g in grads:
            dist.all_reduce(g)
            g /= dist.get_world_size()
        return list(grads)

    slip = r"(?s)3 ranks \(rows 3\+3\+2\).*mean of the ranks' mean gradients"
    with pytest.raises(AssertionError, match=slip):
        lesson08.check_data_parallel(by_world, {})

    def eight(model, x, y):
        grads = torch.autograd.grad(F.mse_loss(model(x), y) * len(x) / 8,
                                    list(model.parameters()))
        for g in grads:
            dist.all_reduce(g)
        return list(grads)

    with pytest.raises(AssertionError, match=r"(?s)rows \d+\+\d+\).*hard-coded as 8"):
        lesson08.check_data_parallel(eight, {})

    def never_combined(model, x, y):
        return list(torch.autograd.grad(F.mse_loss(model(x), y), list(model.parameters())))

    with pytest.raises(AssertionError, match="never combined"):
        lesson08.check_data_parallel(never_combined, {})


def test_data_parallel_rejects_gathered_data_and_a_rebuilt_batch():
    def gathered(model, x, y):
        shards = [None] * dist.get_world_size()
        dist.all_gather_object(shards, (x, y))
        xs, ys = torch.cat([s[0] for s in shards]), torch.cat([s[1] for s in shards])
        return list(torch.autograd.grad(F.mse_loss(model(xs), ys), list(model.parameters())))

    with pytest.raises(AssertionError, match="all_gather_object carried its rows") as caught:
        lesson08.check_data_parallel(gathered, {})
    assert "mean of the ranks" not in str(caught.value)

    def seeded(model, x, y):
        g = torch.Generator().manual_seed(1)
        xs, ys = torch.randn(8, 4, generator=g), torch.randn(8, 1, generator=g)
        return list(torch.autograd.grad(F.mse_loss(model(xs), ys), list(model.parameters())))

    with pytest.raises(AssertionError, match="ran on 8 rows that are not its own 4"):
        lesson08.check_data_parallel(seeded, {})
    # the whole batch past a hook on the model: its layers one by one, or F.linear on the weights
    # over rows all-gathered as tensors: the rows are seen travelling, and on the layers
    with pytest.raises(AssertionError, match="all_gather_object carried its rows"):
        lesson08.check_data_parallel(wrong("ex08_data_parallel", "gather_data_layer_loop"), {})
    with pytest.raises(AssertionError, match="all_gather carried its rows"):
        lesson08.check_data_parallel(wrong("ex08_data_parallel", "gather_rows_functional"), {})

    def own_rows_then_all(model, x, y, hidden=False):   # rows as lists, layers' own forward
        world = dist.get_world_size()
        xs, ys = [None] * world, [None] * world
        model(x)                                         # the layers see only its own rows
        dist.all_gather_object(xs, [1.0 + v for v in x.reshape(-1).tolist()] if hidden
                               else x.tolist())
        dist.all_gather_object(ys, y.tolist())
        h = torch.tensor(xs).reshape(-1, 4) - (1.0 if hidden else 0.0)
        for layer in model:
            h = layer.forward(h)
        grads = torch.autograd.grad(F.mse_loss(h, torch.tensor(sum(ys, []))),
                                    list(model.parameters()))
        for g in grads:                                  # identical gradients all-reduced
            dist.all_reduce(g)
            g /= world
        return list(grads)

    with pytest.raises(AssertionError, match="all_gather_object carried its rows"):
        lesson08.check_data_parallel(own_rows_then_all, {})
    with pytest.raises(AssertionError, match="not that of its own rows' loss"):
        lesson08.check_data_parallel(functools.partial(own_rows_then_all, hidden=True), {})
    for helper in ("_batch", "_stages", "_reference", "_inputs", "_mlp"):
        assert not hasattr(bugs, helper), f"bugs.{helper} is reachable from the notebook"


def test_model_parallel_solution_passes_and_the_article_fails():
    run = lesson08.check_model_parallel(model_parallel_gradients, {})
    rows = len(run["results"][0]["inputs"]["x"])
    width = harness.activation_width([r["inputs"] for r in run["results"]])
    assert rows != 8 and width not in (6, rows) and width in harness.MP_HIDDEN
    assert f"forward output ({rows}, 1)" in lesson08.mp_table(run)
    assert f"sent [{rows * width * 4}] bytes" in lesson08.mp_table(run)

    def article(stage, x, y):
        return stage.gradient(stage(x), x)

    with pytest.raises(AssertionError, match="Hint"):
        lesson08.check_model_parallel(article, {})


def test_model_parallel_rejects_shipped_weights_and_names_the_output_gradient():
    with pytest.raises(AssertionError, match=r"(?s)sent 2 tensor.*not weights"):
        lesson08.check_model_parallel(wrong("ex08_model_parallel", "ships_the_weights"), {})

    with pytest.raises(AssertionError, match="hidden.grad"):
        lesson08.check_model_parallel(wrong("ex08_model_parallel", "grad_wrt_output_sent"), {})

    def eight_rows(stage, x, y):       # a buffer of the Target's old fixed size
        if dist.get_rank() == 0:
            hidden = stage(x)
            dist.send(hidden.detach(), dst=1)
            return [torch.zeros_like(p) for p in stage.parameters()]
        hidden = torch.empty(8, 6)
        dist.recv(hidden, src=0)
        return [torch.zeros_like(p) for p in stage.parameters()]

    with pytest.raises(AssertionError, match=r"(?s)SIGABRT|sent 1 tensor|differs"):
        lesson08.check_model_parallel(eight_rows, {})
    with pytest.raises(AssertionError, match=r"(?s)model_parallel_gradients on 2 ranks.*Hint"):
        lesson08.check_model_parallel(wrong("ex08_model_parallel", "hidden_width_typed_in"), {})


def test_model_parallel_widths_are_drawn_never_the_examples():
    gen = torch.Generator().manual_seed(0)
    drawn = {harness.mp_widths(gen, rows) for rows in (5, 7, 9, 10, 11, 12) for _ in range(20)}
    assert {d for d, _ in drawn} == set(harness.MP_IN) and len({h for _, h in drawn}) >= 4
    assert all(d != 4 and h != 6 and h != d for d, h in drawn)
    assert all(harness.mp_widths(gen, 9)[1] != 9 for _ in range(50))


def test_the_bank_fix_is_refused_through_a_partial_and_an_exec_of_its_source():
    with pytest.raises(AssertionError, match="the bank's model answer"):
        lesson08.check_model_parallel(functools.partial(bugs.fixed_model_parallel_gradients), {})
    copied = {"torch": torch, "dist": dist, "F": F}
    exec(bugs.source("fixed_model_parallel_gradients"), copied)
    with pytest.raises(AssertionError, match="guard|the bank's model answer"):
        lesson08.check_model_parallel(copied["fixed_model_parallel_gradients"], copied)

    def reads_the_source(stage, x, y):
        return bugs.source("fixed_model_parallel_gradients")

    with pytest.raises(AssertionError, match="the bank's model answer"):
        lesson08.check_model_parallel(reads_the_source, {})


def test_deadlock_fails_by_the_deadline_and_the_fix_passes():
    start = time.monotonic()
    with pytest.raises(AssertionError, match="did not finish within the 2 s deadline"):
        lesson08.check_pass_right(wrong("ex08_deadlock", "send_then_recv"), {}, timeout=2)
    assert time.monotonic() - start < 8

    def even_odd(t):
        rank, world = dist.get_rank(), dist.get_world_size()
        got = torch.empty_like(t)
        if rank % 2 == 0:
            dist.send(t, dst=(rank + 1) % world)
            dist.recv(got, src=(rank - 1) % world)
        else:
            dist.recv(got, src=(rank - 1) % world)
            dist.send(t, dst=(rank + 1) % world)
        return got

    pairs = lesson08.check_pass_right(even_odd, {})[3]
    assert all(torch.equal(pairs[r][1], pairs[(r - 1) % 3][0]) for r in range(3))
    assert len({p[0][0].item() for p in pairs}) == 3, "the payloads are random, not full(rank)"
    with pytest.raises(AssertionError, match="bank's model answer"):
        lesson08.check_pass_right(lambda t: fixed_pass_right(t), globals())


def test_ring_rejects_collectives_arithmetic_and_an_unwaited_send():
    with pytest.raises(AssertionError, match="called all_gather.*point-to-point") as caught:
        lesson08.check_pass_right(wrong("ex08_deadlock", "all_gather_collective"), {})
    assert "wrong way" not in str(caught.value)
    with pytest.raises(AssertionError, match="sent 0 tensor"):
        lesson08.check_pass_right(wrong("ex08_deadlock", "arithmetic_no_comm"), {})

    with pytest.raises(AssertionError, match=r"rank \d finished, but its isend was never "
                                             r"completed: wait\(\)"):
        lesson08.check_pass_right(wrong("ex08_deadlock", "isend_never_waited"), {})


def test_numbers_stub_fails_the_answers_pass_and_every_slip_is_rejected():
    assert set(SLIPS) == set(FORMULAS) == set(lesson08.NUMBERS)
    with pytest.raises(AssertionError, match="no answer yet for dp-grad-all-reduce"):
        lesson08.check_numbers({i: None for i in lesson08.NUMBERS})
    right = model_answers(lesson08.NUMBERS)
    assert lesson08.check_numbers(right).correct == 6
    for item_id, slips in SLIPS.items():
        for slip, value in slips.items():
            assert not by_id(item_id).check(value), f"{item_id}: the slip '{slip}' is accepted"
            with pytest.raises(AssertionError, match=f"1 of 6 answers are wrong:\n *- {item_id}"
                                                     f".*{re.escape(slip)}"):
                lesson08.check_numbers({**right, item_id: value})
    with pytest.raises(AssertionError, match="not in this interview"):
        lesson08.check_numbers({**right, "pp-bubble-ideal": 0.2})
    with pytest.raises(AssertionError, match="looks like a percentage"):
        lesson08.check_numbers({**right, "pp-bubble": right["pp-bubble"] * 100})


def _shown(value: float) -> set[str]:
    """How an answer may be written: 66, 66.2, 138, 1.6, 1.64, 0.27, 0.273, 3/11, 9.1, ..."""
    forms = {f"{value:.2g}", f"{value:.3g}", f"{value:.0f}" if value >= 10 else ""}
    return {f for f in forms if f and f not in ("0", "1", "2", "3", "4", "8")} | (
        {"3/11"} if abs(value - 3 / 11) < 1e-9 else set())


def test_no_failure_message_and_no_choice_option_gives_an_answer_away():
    answers = model_answers(lesson08.NUMBERS)
    shown = set().union(*(_shown(v) for v in answers.values()))
    with pytest.raises(AssertionError) as caught:
        lesson08.check_numbers({i: 1e6 for i in lesson08.NUMBERS})
    message = str(caught.value)
    assert all(f"- {i}:" in message for i in lesson08.NUMBERS)
    leaked = {s for s in shown if re.search(rf"(?<![\d.]){re.escape(s)}(?![\d])", message)}
    assert not leaked, f"the failure message states the answers {leaked}"
    for item_id in lesson08.CHOICES:
        item = by_id(item_id)
        with ledger.unrecorded():
            text = " ".join([item.question_en, item.question_zh] + [
                f"{o.text_en} {o.text_zh} {o.why}" for o in item.options])
        leaked = {s for s in shown if re.search(rf"(?<![\d.]){re.escape(s)}(?![\d])", text)}
        assert not leaked, f"{item_id}'s text states an answer of 08.4: {leaked}"


def test_choices_pass_and_a_wrong_pick_gets_its_reason_not_the_answer():
    with ledger.unrecorded():
        right = {i: by_id(i).correct for i in lesson08.CHOICES}
    assert len(set(right.values())) >= 2, "one letter throughout must not pass"
    assert lesson08.check_choices(right).correct == 6
    with pytest.raises(AssertionError) as caught:
        lesson08.check_choices({**right, "tp-f-g": "A", "coll-halves": "z"})
    message = str(caught.value)
    assert "tp-f-g: you chose 'A': Wrong: that is g." in message
    assert "not one of the options A, B, C, D" in message and "Right" not in message


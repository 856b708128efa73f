"""The interview bank's quality (issue 16, deliverable 4): every item is bilingual, explained,
tied to a lesson, and checked by a checker that accepts the model answer and rejects each
listed wrong answer; numeric answers are computed by a tested tplab function; code items run
on real ranks, and a fix that still deadlocks is rejected by the deadline instead of hanging."""
from __future__ import annotations

import dataclasses
import re
import time

import pytest
import torch

from tplab.interview import BANK, TOPICS, by_id, quiz, score
from tplab.interview.bugs import check_source, source
from tplab.interview.items import Item, Numeric, Option, parse_number, resolve

CJK = re.compile(r"[\u4e00-\u9fff]")
# the tested modules a numeric answer may come from (tests/test_cost.py, test_comm.py, ...)
SOURCES = ("tplab.cost.", "tplab.comm.cost.", "tplab.pp.bubble.", "tplab.zero.")
NUMERIC = [i for i in BANK if i.kind == "numeric"]
CHOICE = [i for i in BANK if i.kind == "choice"]
CODE = [i for i in BANK if i.kind == "code"]


def test_size_topics_ids_and_every_lesson():
    assert len(BANK) >= 40, f"the bank has {len(BANK)} items; issue 16 asks for at least 40"
    ids = [i.id for i in BANK]
    assert len(ids) == len(set(ids)), f"duplicate ids: {sorted(x for x in ids if ids.count(x) > 1)}"
    missing = set(TOPICS) - {i.topic for i in BANK}
    assert not missing, f"topics without an item: {missing}"
    lessons = {m for i in BANK for m in re.findall(r"\b0[0-7]\b", i.lesson)}
    assert lessons == {f"0{k}" for k in range(8)}, f"lessons never cited: " \
        f"{sorted({f'0{k}' for k in range(8)} - lessons)}"
    assert len(CODE) >= 3 and len(NUMERIC) >= 10 and len(CHOICE) >= 10


@pytest.mark.parametrize("item", BANK, ids=lambda i: i.id)
def test_both_languages_explanation_lesson(item):
    assert item.question_en.strip() and not CJK.search(item.question_en), \
        f"{item.id}: question_en must be English"
    assert len(CJK.findall(item.question_zh)) >= 8, f"{item.id}: question_zh must be Chinese"
    assert len(item.explanation) > 40, f"{item.id}: explain the answer (and why)"
    assert not item.explanation_zh or CJK.search(item.explanation_zh)
    assert re.search(r"\b0[0-7]\b", item.lesson), f"{item.id}: say which lesson proves it"
    assert item.wrong_answers, f"{item.id}: list a wrong answer the checker must reject"
    assert item.model_answer() not in item.wrong_answers


@pytest.mark.parametrize("item", NUMERIC, ids=lambda i: i.id)
def test_numeric_answers_are_computed_by_a_tested_function(item):
    spec = item.numeric
    assert spec.source.startswith(SOURCES), \
        f"{item.id}: {spec.source} is not one of the tested modules {SOURCES}"
    function = resolve(spec.source)
    assert callable(function)
    # the schema has no field for a typed-in answer: the value can only come from the call
    assert {f.name for f in dataclasses.fields(Numeric)} == {
        "source", "args", "kwargs", "pick", "scale", "unit", "rtol"}
    result = function(*spec.args, **dict(spec.kwargs))
    value = (result[spec.pick] if spec.pick else result) * spec.scale
    assert item.model_answer() == pytest.approx(value, rel=1e-12)
    assert 0 < spec.rtol <= 0.05, f"{item.id}: state a tolerance of at most 5%"
    assert item.check(item.model_answer())
    assert item.check(f"{value:.4g} {spec.unit}"), "a learner's rounded answer with its unit"
    for wrong in item.wrong_answers:
        assert not item.check(wrong), f"{item.id}: the checker accepted the wrong answer {wrong!r}"


@pytest.mark.parametrize("item", CHOICE, ids=lambda i: i.id)
def test_choice_options_explained_and_checked(item):
    for option in item.options:
        assert option.text_en and option.text_zh and option.why, \
            f"{item.id}: every option needs en, zh (terms may stay in English) and a reason"
    assert item.check(item.correct) and item.check(item.correct.lower() + ")")
    assert item.option_reason(item.correct).startswith("Right")
    for wrong in item.wrong_answers:
        assert not item.check(wrong), f"{item.id}: accepted the wrong answer {wrong!r}"
        assert item.option_reason(wrong).startswith("Wrong"), f"{item.id}: say why {wrong} is wrong"
    assert not item.check("") and not item.check("Z") and not item.check(None)


def test_code_items_run_on_ranks_and_a_deadlocked_fix_fails_by_the_deadline():
    started = time.monotonic()
    for item in CODE:
        assert item.code.timeout <= 10, f"{item.id}: a code item's deadline is at most 10 s"
        assert item.check(item.model_answer()), f"{item.id}: the fixed source must pass"
        for wrong in item.wrong_answers:
            assert not item.check(wrong, timeout=3), f"{item.id}: a listed wrong fix passed"
    deadlock = by_id("dbg-deadlock")
    t0 = time.monotonic()
    result = check_source(deadlock.code.task, source("buggy_pass_right"), timeout=2)
    assert not result.ok and "timed out" in result.message and time.monotonic() - t0 < 8
    assert time.monotonic() - started < 20


def test_check_source_takes_a_function_checks_forward_outputs_and_uneven_shards():
    """A notebook's function runs as it is on the ranks; the model-parallel task also compares
    each stage's forward output; on 3 ranks (rows 3+3+2) dividing by the world size is wrong."""
    from tplab.interview import bugs

    assert check_source("model_parallel_gradients", bugs.fixed_model_parallel_gradients).ok
    assert check_source("pass_right", bugs.fixed_pass_right, world=3).ok

    def right_gradients_then_another_forward(stage, x, y):
        grads = bugs.fixed_model_parallel_gradients(stage, x, y)
        stage(torch.zeros(len(x), stage.in_features))        # the last forward is not the model's
        return grads

    result = check_source("model_parallel_gradients", right_gradients_then_another_forward)
    assert not result.ok and "forward output differs" in result.message
    uneven = check_source("data_parallel_gradients", bugs.fixed_data_parallel_gradients, world=3)
    assert not uneven.ok and "differs from the one-process reference" in uneven.message
    assert len(uneven.results) == 3
    with pytest.raises(ValueError, match="runs on"):
        check_source("model_parallel_gradients", bugs.fixed_model_parallel_gradients, world=3)


def test_article_code_answers_are_ported():
    """The article's two coding answers are spot-the-bug items with their original faults."""
    dp, mp = by_id("dp-article-code"), by_id("pp-article-code")
    assert "autograd.grad(output.sum(), x)" in dp.code.source(dp.code.buggy)
    assert ".gradient(" in mp.code.source(mp.code.buggy)


def test_check_source_rejects_syntax_errors_and_unknown_tasks_without_ranks():
    assert not check_source("train_step", "def train_step(:\n").ok
    with pytest.raises(ValueError, match="unknown task"):
        check_source("no_such_task", "pass")


@pytest.mark.parametrize("text, value", [("1.75", 1.75), ("1.75 GB", 1.75), ("2e-3", 2e-3),
                                         ("3/11", 3 / 11), ("27.3%", 0.273), ("1,104", 1104.0),
                                         (8, 8.0), ("about", None), ("1/0", None)])
def test_parse_number(text, value):
    got = parse_number(text)
    assert got == (None if value is None else pytest.approx(value))


def test_the_schema_refuses_an_item_that_could_never_fail():
    base = dict(id="x", topic="pipeline", difficulty=1, question_en="q", question_zh="问",
                explanation="e", lesson="05 §5")
    with pytest.raises(ValueError, match="wrong answer"):
        Item(kind="choice", options=(Option("a", "甲", "Right"), Option("b", "乙", "Wrong")),
             correct="A", **base)
    with pytest.raises(ValueError, match="topic"):
        Item(**{**base, "topic": "astrology"}, kind="numeric", wrong_answers=("1",),
             numeric=Numeric("tplab.pp.bubble.bubble", (4, 8)))


def test_quiz_is_seeded_and_score_builds_the_table():
    assert [i.id for i in quiz(5, seed=7)] == [i.id for i in quiz(5, seed=7)]
    assert [i.id for i in quiz(5, seed=7)] != [i.id for i in quiz(5, seed=8)]
    assert {i.topic for i in quiz(6, seed=0, topic="pipeline")} == {"pipeline"}
    with pytest.raises(ValueError, match="between 1 and"):
        quiz(len(BANK) + 1)
    items = quiz(4, seed=3, kinds=("numeric", "choice"))
    answers = [items[0].model_answer(), items[1].wrong_answers[0], None, items[3].model_answer()]
    card = score(items, answers)
    assert card.correct == 2 and card.asked == 4
    assert [r["correct"] for r in card.rows] == [True, False, False, True]
    assert "score: 2/4" in str(card) and "skipped" in str(card)
    by_dict = score(items, {items[0].id: items[0].model_answer()})
    assert by_dict.correct == 1
    with pytest.raises(ValueError, match="one per item"):
        score(items, ["A"])

"""Exercises 08.4 and 08.5 give nothing for an answer looked up rather than worked out: read
from the bank in any way (`tplab.interview.ledger` notes it), or computed by the library the
bank's numbers come from (the kernel's history names it); after a pass the explanations may be
read and the check run again. Right answers are read here as the checker reads them, under
`ledger.unrecorded()`; the graded runs are in test_wrong_answers."""
import pytest

from tplab.checks import lesson08, lesson08_mock
from tplab.interview import by_id, ledger


@pytest.fixture(autouse=True)
def fresh_kernel(monkeypatch):
    """Each test starts as a fresh kernel: no answer read, none earned, no cell run."""
    monkeypatch.setattr(ledger, "_READ", {})
    monkeypatch.setattr(ledger, "_EARNED", set())
    monkeypatch.setattr(lesson08_mock, "_executed_sources", lambda: [])


def model_answers(ids) -> dict:
    with ledger.unrecorded():
        return {i: by_id(i).model_answer() for i in ids}


LOOK_UPS = {   # how a cell could read an item's answer from the bank
    "model_answer": lambda item, _: item.model_answer(),
    "correct": lambda item, _: item.correct,
    "explanation": lambda item, _: item.explain("zh"),
    "shown_answer": lambda item, _: item.shown_answer(),
    "check": lambda item, answer: item.check(answer),
    "wrong_answers": lambda item, _: item.wrong_answers,
    "repr": lambda item, _: repr(item),
    "getattr": lambda item, _: getattr(item, "model_" + "answer")(),
}


@pytest.mark.parametrize("how", [*LOOK_UPS, "options' why"])
def test_an_answer_read_from_the_bank_earns_nothing(how):
    for ids, check in ((lesson08.NUMBERS, lesson08.check_numbers),
                       (lesson08.CHOICES, lesson08.check_choices)):
        right = model_answers(ids)
        if how == "options' why":
            if ids == lesson08.NUMBERS:
                continue
            [option.why for option in by_id(ids[2]).options]
        else:
            LOOK_UPS[how](by_id(ids[2]), right[ids[2]])
        with pytest.raises(AssertionError, match=rf"(?s)answer to {ids[2]} .*worked out, not "
                                                 rf"looked up.*restart the kernel"):
            check(right)


def test_after_a_pass_the_explanations_may_be_read_and_the_check_run_again():
    right = model_answers(lesson08.NUMBERS)
    assert lesson08.check_numbers(right).correct == 6
    explained = [by_id(i).explanation for i in lesson08.NUMBERS]
    assert lesson08.check_numbers(right).correct == 6 and all(explained)
    by_id(lesson08.CHOICES[0]).correct                      # not earned yet: noted
    with pytest.raises(AssertionError, match="not looked up"):
        lesson08.check_choices(model_answers(lesson08.CHOICES))


def test_numbers_computed_by_the_library_earn_nothing(monkeypatch):
    right = model_answers(lesson08.NUMBERS)
    cells = ["from tplab.checks.lesson08 import CHOICES, NUMBERS, show\n"
             "from tplab.interview import by_id  # tplab.cost holds the constants",
             "bubble = (4 - 1) / (8 + 4 - 1)  # tplab.pp.bubble.bubble would say"]
    monkeypatch.setattr(lesson08_mock, "_executed_sources", lambda: cells)
    assert lesson08.check_numbers(right).correct == 6, "a comment or a name is not a use"
    for use in ("from tplab.cost.time import decode_time", "import tplab.zero as z",
                "from tplab import (\n    pp,\n)", "import importlib; importlib.import_module("
                "'tplab.cost.memory')", "from tplab.checks.lesson08_mock import SLIPS"):
        monkeypatch.setattr(ledger, "_EARNED", set())
        monkeypatch.setattr(lesson08_mock, "_executed_sources", lambda: [*cells, use])
        with pytest.raises(AssertionError, match="uses the library that computes these answers"):
            lesson08.check_numbers(right)
    assert lesson08.check_choices(model_answers(lesson08.CHOICES)).correct == 6


def test_a_numeric_items_unit_and_tolerance_are_the_question_not_its_answer():
    """Reading which unit an item wants (the audit's ok_numbers_read_unit) or its tolerance is
    not a look-up; reading its value, or what computes it (source, args, scale), is."""
    right = model_answers(lesson08.NUMBERS)
    asked = [(by_id(i).numeric.unit, by_id(i).numeric.rtol) for i in lesson08.NUMBERS]
    assert any(unit for unit, _ in asked) and all(rtol > 0 for _, rtol in asked)
    assert not ledger.looked_up(lesson08.NUMBERS)
    assert lesson08.check_numbers(right).correct == 6
    item = lesson08.NUMBERS[3]
    for read in (lambda n: n.value(), lambda n: n.source, lambda n: n.args, lambda n: n.scale):
        ledger._EARNED.discard(item)        # a fresh kernel's (the fixture's set)
        read(by_id(item).numeric)
        with pytest.raises(AssertionError, match=rf"(?s)answer to {item} .*not looked up"):
            lesson08.check_numbers(right)

"""Plausible wrong answers earn nothing: lessons 00-02 (the machinery: wrong_answer_rounds.py).

Also: every wrong answer targets a real exercise, and every notebook's rounds are graded by
exactly one of the tests/test_wrong_answers*.py files."""
from pathlib import Path

from wrong_answer_rounds import (
    GROUPS,
    HERE,
    every_wrong_answer_targets_a_real_exercise,
    parametrize,
    rounds_of,
    wrong_answers,
    wrong_answers_earn_zero,
)

ROUNDS = rounds_of(GROUPS[Path(__file__).name])


def test_every_wrong_answer_targets_a_real_exercise():
    every_wrong_answer_targets_a_real_exercise()


def test_every_notebook_is_graded_by_one_file():
    grouped = [stem for stems in GROUPS.values() for stem in stems]
    assert sorted(grouped) == sorted(wrong_answers()), f"{HERE}: notebooks and GROUPS differ"
    for name in GROUPS:
        assert (Path(__file__).parent / name).is_file(), f"GROUPS names a missing file {name}"


@parametrize(ROUNDS)
def test_wrong_answers_earn_zero(stem, k, tmp_path_factory):
    wrong_answers_earn_zero(stem, k, tmp_path_factory)

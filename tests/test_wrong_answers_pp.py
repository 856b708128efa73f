"""Plausible wrong answers earn nothing: lessons 05-06 (pipelines, serving)
(the machinery: wrong_answer_rounds.py)."""
from pathlib import Path

from wrong_answer_rounds import GROUPS, parametrize, rounds_of, wrong_answers_earn_zero

ROUNDS = rounds_of(GROUPS[Path(__file__).name])


@parametrize(ROUNDS)
def test_wrong_answers_earn_zero(stem, k, tmp_path_factory):
    wrong_answers_earn_zero(stem, k, tmp_path_factory)

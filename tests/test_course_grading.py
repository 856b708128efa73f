"""The real course, graded: each solution earns full marks, each untouched exercise earns zero.

This is what proves every exercise check can fail (on the generated stub) and can pass
(on the reference solution).
"""
import pytest

from tplab.grading.build import build
from tplab.grading.grade import grade_notebook
from tplab.grading.report import format_table
from tplab.paths import EXERCISES, SOLUTIONS

NOTEBOOKS = sorted(p.name for p in SOLUTIONS.glob("*.ipynb"))


def test_there_is_a_course():
    assert NOTEBOOKS, "solutions/ holds no notebook"


def test_exercises_are_built_from_solutions():
    problems = build(check=True)
    assert not problems, "exercises/ is stale; run `make build`: " + "; ".join(map(str, problems))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solution_earns_full_marks(name):
    result = grade_notebook(SOLUTIONS / name)
    assert result["points"] > 0 and result["exercises"], format_table(result)
    assert result["earned"] == result["points"], format_table(result)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_untouched_exercise_earns_zero_on_every_exercise(name):
    result = grade_notebook(EXERCISES / name)
    assert result["exercises"], format_table(result)
    for exercise in result["exercises"]:
        assert exercise["earned"] == 0, format_table(result)
        assert exercise["status"] == "not attempted", format_table(result)

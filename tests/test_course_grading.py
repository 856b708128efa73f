"""The real course, graded: each solution earns full marks, each untouched exercise earns zero.

This is what proves every exercise check can fail (on the generated stub) and can pass
(on the reference solution). All of them are graded at the first test that needs one, JOBS
at a time (each in its own worker and kernel, as `tplab grade --jobs` does).
"""
import os

import pytest

from tplab.grading.build import build
from tplab.grading.grade import grade_notebook
from tplab.grading.gradebook import grade_many
from tplab.grading.report import format_table
from tplab.paths import EXERCISES, SOLUTIONS

NOTEBOOKS = sorted(p.name for p in SOLUTIONS.glob("*.ipynb"))
JOBS = int(os.environ.get("TPLAB_TEST_JOBS", "2"))
_GRADED: dict = {}  # path -> its Graded (a result, or why there is none)


def graded(path):
    if not _GRADED:
        paths = [SOLUTIONS / n for n in NOTEBOOKS] + [EXERCISES / n for n in NOTEBOOKS]
        _GRADED.update(zip(paths, grade_many(paths, grade_notebook, jobs=JOBS)))
    outcome = _GRADED[path]
    assert outcome.error is None, f"{path} could not be graded: {outcome.error}"
    return outcome.result


def test_there_is_a_course():
    assert NOTEBOOKS, "solutions/ holds no notebook"


def test_exercises_are_built_from_solutions():
    problems = build(check=True)
    assert not problems, "exercises/ is stale; run `make build`: " + "; ".join(map(str, problems))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solution_earns_full_marks(name):
    result = graded(SOLUTIONS / name)
    assert result["points"] > 0 and result["exercises"], format_table(result)
    assert result["earned"] == result["points"], format_table(result)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_untouched_exercise_earns_zero_on_every_exercise(name):
    result = graded(EXERCISES / name)
    assert result["exercises"], format_table(result)
    for exercise in result["exercises"]:
        assert exercise["earned"] == 0, format_table(result)
        assert exercise["status"] == "not attempted", format_table(result)

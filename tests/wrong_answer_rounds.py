"""Plausible wrong answers must earn nothing on their exercise: the machinery, used by
tests/test_wrong_answers*.py (one file per group of notebooks, so that `make test`'s pytest
workers, which take whole files, share the rounds out instead of one worker grading them all).

Each file `tests/wrong_answers/<notebook>/<exercise id>/<mistake>.py` holds the whole source
of that exercise's cell as a learner who made that mistake would write it (its first line, a
comment, names the mistake class). It must be rejected by a check, as `failed` (an assertion
with its message); a file whose mistake is meant to raise instead says so on a line
`# expect: error` — so a wrong answer broken by a typo cannot pass for a rejected one.

For each notebook the wrong answers are graded in rounds: round k puts the k-th wrong answer
of every exercise into the exercise notebook (the other exercises keep their stubs, which fail
at once), so a notebook is executed as often as its most-tried exercise has wrong answers, not
once per answer. A notebook's rounds are graded together, `JOBS` at a time (each in its own
grading worker and kernel, as `tplab grade --jobs` does): a round spends much of its time
starting a kernel and importing, which leaves a core free for the next one.
"""
from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest

from tplab.grading.cells import exercise_of, read_notebook
from tplab.grading.grade import grade_notebook
from tplab.grading.gradebook import grade_many
from tplab.grading.report import format_table
from tplab.paths import EXERCISES

HERE = Path(__file__).with_name("wrong_answers")
JOBS = int(os.environ.get("TPLAB_TEST_JOBS", "2"))  # rounds graded at once
_GRADED: dict[str, dict] = {}  # stem -> round -> its Graded (a result, or why there is none)


def wrong_answers() -> dict[str, dict[str, list[Path]]]:
    """{notebook stem: {exercise id: [wrong answer files, sorted]}}."""
    found: dict[str, dict[str, list[Path]]] = {}
    for path in sorted(HERE.glob("*/*/*.py")):
        found.setdefault(path.parent.parent.name, {}).setdefault(path.parent.name, []).append(path)
    return found


def rounds(stem: str) -> list[tuple[str, int]]:
    answers = wrong_answers()[stem]
    return [(stem, k) for k in range(max(len(files) for files in answers.values()))]


# which test file grades which notebooks' rounds (balanced by hand: 04 and 05 rounds are slow)
GROUPS = {
    "test_wrong_answers.py": ("00_devices_and_ranks", "01_collectives", "02_data_parallel"),
    "test_wrong_answers_tp.py": ("03_tensor_parallel_layers", "04_tensor_parallel_inference"),
    "test_wrong_answers_pp.py": ("05_pipeline_parallelism", "06_task_parallelism"),
    "test_wrong_answers_grid.py": ("07_putting_it_together", "08_interview"),
}


def rounds_of(stems) -> list[tuple[str, int]]:
    """The rounds of these notebooks; every notebook with wrong answers must be in one file's."""
    return [r for stem in stems for r in rounds(stem)]


def every_wrong_answer_targets_a_real_exercise():
    for stem, exercises in wrong_answers().items():
        notebook = EXERCISES / f"{stem}.ipynb"
        assert notebook.is_file(), f"tests/wrong_answers/{stem}: no exercises/{stem}.ipynb"
        ids = {str(exercise_of(c)) for c in read_notebook(notebook).cells
               if exercise_of(c) is not None}
        for exercise_id, files in exercises.items():
            assert exercise_id in ids, (f"tests/wrong_answers/{stem}/{exercise_id}: "
                                        f"no such exercise in {notebook.name}")
            for path in files:
                assert path.read_text().startswith("#"), (
                    f"{path}: first line should name the mistake")


def round_notebook(stem: str, k: int, folder: Path) -> Path:
    """The exercise notebook with the k-th wrong answer of every exercise in its cell."""
    chosen = chosen_in_round(stem, k)
    nb = copy.deepcopy(read_notebook(EXERCISES / f"{stem}.ipynb"))
    placed = set()
    for cell in nb.cells:
        eid = exercise_of(cell)
        if eid is not None and str(eid) in chosen and str(eid) not in placed:
            cell.source = chosen[str(eid)].read_text()
            placed.add(str(eid))
    assert placed == set(chosen), f"no exercise cell for {set(chosen) - placed}"
    path = folder / f"round{k}" / f"{stem}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(nb))
    return path


def chosen_in_round(stem: str, k: int) -> dict[str, Path]:
    return {eid: files[k] for eid, files in wrong_answers()[stem].items() if k < len(files)}


def graded_round(stem: str, k: int, folder: Path) -> dict:
    """Round k of `stem`'s grade; all of `stem`'s rounds are graded at the first call, JOBS at
    a time, once per session."""
    if stem not in _GRADED:
        ks = [r for _, r in rounds(stem)]
        paths = [round_notebook(stem, r, folder) for r in ks]
        _GRADED[stem] = dict(zip(ks, grade_many(paths, grade_notebook, jobs=JOBS)))
    graded = _GRADED[stem][k]
    assert graded.error is None, f"{stem} round {k} could not be graded: {graded.error}"
    return graded.result


def parametrize(rounds_here):
    return pytest.mark.parametrize("stem,k", rounds_here,
                                   ids=[f"{s}-round{k}" for s, k in rounds_here])


def wrong_answers_earn_zero(stem, k, tmp_path_factory):
    chosen = chosen_in_round(stem, k)
    result = graded_round(stem, k, tmp_path_factory.mktemp(f"wrong-{stem}"))
    table = format_table(result)
    for exercise in result["exercises"]:
        if exercise["id"] in chosen:
            mistake = chosen[exercise["id"]].relative_to(HERE)
            assert exercise["earned"] == 0, (
                f"wrong answer {mistake} earned {exercise['earned']} points:\n{table}")
            expected = expected_status(chosen[exercise["id"]])
            assert exercise["status"] == expected, f"{mistake}: expected {expected}, got:\n{table}"


def expected_status(path: Path) -> str:
    found = re.search(r"^# expect: (failed|error|timeout)\b", path.read_text(), re.MULTILINE)
    return found.group(1) if found else "failed"

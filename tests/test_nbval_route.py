"""`pytest --nbval-lax mywork/NN_*.ipynb` grades like `tplab grade` (tplab.grading.nbval_plugin).

pytest runs in a subprocess, as a learner would run it, on copies in a temporary folder.
Starting pytest costs seconds here (torch is imported), so one `--nbval-lax` session grades
every case at once and the tests below each read their part of its output; one more session,
collection only, shows that plain `--nbval` (how `make test` runs) is left alone.
"""
from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_grade import EXERCISE, SOLUTION, answered, read, save

from tplab.grading.cells import check_of
from tplab.grading.grade import grade_notebook, worker_env
from tplab.grading.report import format_table
from tplab.paths import EXERCISES
from tplab.paths import SOLUTIONS as COURSE_SOLUTIONS

PLUGIN = "tplab.grading.nbval_plugin"
BANNER = "tplab grade (reference checks restored)"
WIDTH = 100
LESSON = "00_devices_and_ranks.ipynb"  # the fastest course notebook: ~9 s graded (01, 03: ~12 s)


def pytest_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """pytest with the plugin (by its entry point once installed, else by -p) in `cwd`."""
    installed = any(ep.value == PLUGIN
                    for ep in importlib.metadata.entry_points(group="pytest11"))
    env = {**worker_env(), "COLUMNS": str(WIDTH)}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", *([] if installed else ["-p", PLUGIN]),
         "-p", "no:cacheprovider", "-q", f"--rootdir={cwd}", "--nbval-current-env", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def tables(output: str) -> dict[str, list[str]]:
    """The plugin's tables in pytest's output: {notebook: its lines after the first}."""
    assert BANNER in output, "the plugin printed no grade table:\n" + output[-3000:]
    found, lines = {}, output.split(BANNER, 1)[1].splitlines()[1:]
    while lines and lines[0].endswith(".ipynb"):
        end = next(i for i, line in enumerate(lines) if line.startswith("total: "))
        found[lines[0]] = lines[1:end + 1]
        lines = lines[end + 2:]
    return found


def rows(table: list[str]) -> dict[str, list[str]]:
    """{exercise id: the words of its row} (a long message's wrapped lines left out)."""
    return {line.split()[0]: line.split() for line in table[1:-1] if not line.startswith(" ")}


def lesson_with_solution_code() -> nbformat.NotebookNode:
    solution = {c.id: c.source for c in read(COURSE_SOLUTIONS / LESSON).cells}
    nb = read(EXERCISES / LESSON)
    for cell in nb.cells:
        if "exercise" in cell.metadata.get("tplab", {}):
            cell.source = solution[cell.id]
    return nb


@pytest.fixture(scope="module")
def lax(tmp_path_factory):
    """One `pytest --nbval-lax` session over every case; (its output, its tables, the folder)."""
    root = tmp_path_factory.mktemp("nbval")
    solutions = root / "solutions"  # the course's lesson 00 and the grader's demo, side by side
    solutions.mkdir()
    shutil.copy(COURSE_SOLUTIONS / LESSON, solutions / LESSON)
    shutil.copy(SOLUTION, solutions / SOLUTION.name)
    # a learner who got square and mean wrong, weakened one check and deleted two
    learner = answered(**{"square-solution": "def square(x):\n    return x * 2",
                          "mean-solution": "values = [1.0, 2.0]\nmean = 0.0",
                          "square-check-1": "assert True"})
    learner.cells = [c for c in learner.cells if c.id not in ("square-check-2", "mean-check")]
    orphan = read(EXERCISE)
    orphan.metadata["tplab"]["solution"] = "99_gone"
    notebooks = {
        "lesson": save(lesson_with_solution_code(), root / "mywork" / LESSON),
        "learner": save(learner, root / "learner" / "01_demo.ipynb"),
        "stub": save(read(EXERCISE), root / "stub" / "01_demo.ipynb"),
        "crash": save(answered(**{"mean-solution": "import os\nos._exit(1)"}),
                      root / "crash" / "01_demo.ipynb"),
        "plain": save(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]),
                      root / "other" / "plain.ipynb"),
        "orphan": save(orphan, root / "lost" / "99_gone.ipynb"),
    }
    before = {name: path.read_bytes() for name, path in notebooks.items()}
    proc = pytest_run("--nbval-lax", f"--tplab-solutions={solutions}", "-rA",
                      "--continue-on-collection-errors",
                      *(str(p.relative_to(root)) for p in notebooks.values()), cwd=root)
    for name, path in notebooks.items():
        assert path.read_bytes() == before[name], f"{name}: a notebook must only be read"
    return proc.stdout, tables(proc.stdout), root


def test_a_learner_with_the_solutions_code_earns_full_marks_on_a_real_lesson(lax):
    output, found, _ = lax
    table = found[f"mywork/{LESSON}"]
    checks = [c for c in read(COURSE_SOLUTIONS / LESSON).cells if check_of(c)]
    points = sum(c.metadata["tplab"]["points"] for c in checks)
    assert table[-1] == f"total: {points}/{points}", "\n".join(table)
    assert list(rows(table)) == list(dict.fromkeys(map(check_of, checks)))
    assert {row[3] for row in rows(table).values()} == {"passed"}, "\n".join(table)


def test_deleted_and_weakened_checks_are_restored_the_table_is_tplab_grades(lax):
    output, found, root = lax
    path = root / "learner" / "01_demo.ipynb"
    expected = format_table(grade_notebook(path, root / "solutions"), width=WIDTH)
    assert found["learner/01_demo.ipynb"] == expected.splitlines()[1:]
    square, mean = (rows(found["learner/01_demo.ipynb"])[name] for name in ("square", "mean"))
    assert square[1:4] == ["3", "0", "failed"] and "should be 9" in " ".join(square)
    assert mean[1:4] == ["3", "0", "failed"] and "got 0.0" in " ".join(mean)
    assert expected.endswith("total: 4/10")
    # nbval ran the merged notebook: 8 code cells in the learner's file, 10 with the checks back
    assert len([c for c in read(path).cells if c.cell_type == "code"]) == 8
    ran = set(re.findall(r"^(?:PASSED|FAILED) (learner/01_demo\.ipynb::Cell \d+)", output, re.M))
    assert ran == {f"learner/01_demo.ipynb::Cell {i}" for i in range(10)}, output[-3000:]


def test_the_stub_earns_nothing(lax):
    table = lax[1]["stub/01_demo.ipynb"]
    assert table[-1] == "total: 0/10"
    assert [row[3:5] for row in rows(table).values()] == [["not", "attempted"]] * 4


def test_a_dead_kernel_costs_the_rest_and_says_why(lax):
    crash = rows(lax[1]["crash/01_demo.ipynb"])
    assert crash["square"][2:4] == ["3", "passed"]
    assert crash["mean"][3:6] == ["error", "KernelDied:", "the"]
    assert crash["safe_div"][3:6] == ["error", "KernelDied:", "not"]


def test_other_notebooks_are_not_graded_and_a_missing_solution_says_so(lax):
    output, found, _ = lax
    assert "other/plain.ipynb" not in found and "lost/99_gone.ipynb" not in found
    assert "PASSED other/plain.ipynb::Cell 0" in output  # nbval ran it as usual
    assert "tplab cannot grade this notebook: no solution notebook for" in output


def test_plain_nbval_collects_each_notebook_as_it_is(tmp_path):
    """`make test` runs --nbval over notebooks/ and solutions/: the plugin must not act there."""
    learner = read(EXERCISE)
    learner.cells = [c for c in learner.cells if c.id != "mean-check"]  # 9 code cells left
    save(learner, tmp_path / "mywork" / "01_demo.ipynb")
    proc = pytest_run("--nbval", "--collect-only", "mywork/01_demo.ipynb", cwd=tmp_path)
    cells = [line for line in proc.stdout.splitlines() if "::Cell " in line]
    assert cells == [f"mywork/01_demo.ipynb::Cell {i}" for i in range(9)], proc.stdout
    assert "tplab" not in proc.stdout

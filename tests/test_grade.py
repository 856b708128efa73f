"""`tplab grade`: reference checks restored, each exercise scored on its own, no way to hang the grader."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell

from tplab import cli
from tplab.grading.cells import check_of
from tplab.grading import worker
from tplab.grading.grade import GradingError, cell_problem, grade_notebook
from tplab.grading.report import error_message
from tplab.grading.restore import restore_checks

FIXTURES = Path(__file__).parent / "fixtures" / "grading"
SOLUTIONS = FIXTURES / "solutions"
EXERCISE = FIXTURES / "exercises" / "01_demo.ipynb"
SOLUTION = SOLUTIONS / "01_demo.ipynb"
KEYS = {"id", "points", "earned", "status", "message"}


def read(path: Path):
    return nbformat.read(path, as_version=4)


def answered(**answers: str):
    """The exercise notebook with the solution's answers typed in, then `answers` (cell id -> source)."""
    nb, solution = read(EXERCISE), {c.id: c for c in read(SOLUTION).cells}
    for cell in nb.cells:
        if "exercise" in cell.metadata.get("tplab", {}):
            cell.source = solution[cell.id].source
        cell.source = answers.get(cell.id, cell.source)
    return nb


def save(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def by_id(result: dict) -> dict:
    return {e["id"]: e for e in result["exercises"]}


def grade_unchanged(path: Path, **kwargs) -> dict:
    """Grade `path` and check the grader left the file exactly as it was."""
    before = path.read_bytes()
    result = grade_notebook(path, SOLUTIONS, **kwargs)
    assert path.read_bytes() == before
    assert all(set(e) == KEYS for e in result["exercises"])
    return result


def test_solution_earns_full_marks():
    result = grade_unchanged(SOLUTION)
    assert (result["earned"], result["points"]) == (10, 10)
    assert [(e["id"], e["points"], e["status"], e["message"]) for e in result["exercises"]] == [
        ("square", 3, "passed", ""), ("mean", 3, "passed", ""), ("scale", 2, "passed", ""),
        ("safe_div", 2, "passed", "")]


def test_untouched_exercise_is_not_attempted_everywhere():
    result = grade_unchanged(EXERCISE)
    assert result["earned"] == 0 and result["points"] == 10
    for exercise in result["exercises"]:
        assert exercise["status"] == "not attempted"
        assert exercise["message"] == f"NotImplementedError: exercise {exercise['id']}: write your code here"


def test_restore_puts_back_edited_and_deleted_checks_in_place_and_strips_fake_ones():
    solution = read(SOLUTION)
    student = read(EXERCISE)
    by = {c.id: c for c in student.cells}
    by["square-check-1"].source = "assert True"
    by["square-check-1"].metadata["tplab"]["points"] = 50
    student.cells = [c for c in student.cells if c.id not in ("square-check-2", "mean-check")]
    fake = new_code_cell("pass", metadata={"tplab": {"check": "mean", "points": 9}})
    student.cells.append(fake)

    merged = restore_checks(student, solution)
    assert [c.id for c in merged.cells] == [c.id for c in solution.cells] + [fake.id]
    reference = {c.id: c for c in solution.cells}
    for cell in merged.cells[:-1]:
        if check_of(cell):
            assert cell.source == reference[cell.id].source
            assert cell.metadata == reference[cell.id].metadata
    assert check_of(merged.cells[-1]) is None
    assert "assert True" in [c.source for c in student.cells]  # the learner's copy is untouched


def test_tampered_checks_still_fail_when_graded(tmp_path):
    nb = read(EXERCISE)
    for cell in nb.cells:
        if check_of(cell) == "square":
            cell.source = "assert True"
    nb.cells = [c for c in nb.cells if c.id != "mean-check"]
    nb.cells.append(new_code_cell("pass", metadata={"tplab": {"check": "bonus", "points": 100}}))
    result = grade_unchanged(save(nb, tmp_path / "01_demo.ipynb"))
    assert (result["earned"], result["points"]) == (0, 10)
    assert [e["id"] for e in result["exercises"]] == ["square", "mean", "scale", "safe_div"]
    assert by_id(result)["square"]["status"] == "not attempted"
    assert by_id(result)["mean"]["points"] == 3


def test_infinite_loop_costs_only_its_exercise(tmp_path):
    nb = answered(**{
        "mean-solution": "values = [1.0]\nwhile True:\n    pass",
        "scale-solution": "def scale(xs, k):\n    return xs\n\ndef total(xs):\n    return sum(xs)",
    })
    nb.cells.insert(0, new_code_cell('open("kernel-was-here.txt", "w").write("hi")'))
    # A new name: the grader finds the solution through the notebook's metadata.
    path = save(nb, tmp_path / "learner" / "my attempt.ipynb")
    started = time.monotonic()
    result = grade_unchanged(path, timeout=3)
    assert time.monotonic() - started < 30
    ex = by_id(result)
    assert (ex["mean"]["status"], ex["mean"]["earned"]) == ("timeout", 0)
    assert "3 s" in ex["mean"]["message"]
    assert (ex["square"]["status"], ex["square"]["earned"]) == ("passed", 3)
    assert (ex["safe_div"]["status"], ex["safe_div"]["earned"]) == ("passed", 2)
    # An assert without a message is reported with its source line.
    assert ex["scale"]["status"] == "failed"
    assert ex["scale"]["message"] == "AssertionError (line 1: assert scale([1, 2], 3) == [3, 6])"
    assert result["earned"] == 5
    # The kernel ran in the notebook's own folder.
    assert (tmp_path / "learner" / "kernel-was-here.txt").read_text() == "hi"


def test_lost_kernels_cost_only_their_exercise(tmp_path):
    nb = answered(**{
        "square-solution": "def square(x):\n    return abs(x) * 2",  # right for -2, wrong for 3
        "mean-solution": "import os\nos._exit(1)",
        "scale-solution": ("import time\nwhile True:  # swallows the grader's interrupt\n"
                           "    try:\n        time.sleep(0.1)\n    except KeyboardInterrupt:\n        pass"),
        # Needs `math` from the first cell: only passes if the state was rebuilt after each restart.
        "safe-div-solution": ("def safe_div(a, b):\n    if b == 0:\n        raise ZeroDivisionError\n"
                              "    return math.fsum([a]) / b"),
    })
    result = grade_unchanged(save(nb, tmp_path / "01_demo.ipynb"), timeout=2, grace=1)
    ex = by_id(result)
    assert (ex["square"]["status"], ex["square"]["earned"]) == ("failed", 1)
    assert ex["square"]["message"] == "AssertionError: square(3) should be 9"
    assert ex["mean"]["status"] == "error" and "kernel died" in ex["mean"]["message"]
    assert ex["scale"]["status"] == "timeout" and "ignored the interrupt" in ex["scale"]["message"]
    assert (ex["safe_div"]["status"], ex["safe_div"]["earned"]) == ("passed", 2)


def test_overall_deadline_stops_grading_and_kills_the_kernel(tmp_path):
    nb = read(EXERCISE)
    nb.cells[1].source = "import time\ntime.sleep(600)"
    path = save(nb, tmp_path / "slow" / "01_demo.ipynb")
    started = time.monotonic()
    result = grade_unchanged(path, timeout=300, wall_timeout=4)
    assert time.monotonic() - started < 15
    assert result["earned"] == 0
    for exercise in result["exercises"]:
        assert exercise["status"] == "timeout"
        assert "grading stopped at the 4 s limit" in exercise["message"]
    time.sleep(0.5)
    left = []
    for process in psutil.process_iter(["cwd", "status"]):
        if process.info["status"] != psutil.STATUS_ZOMBIE and process.info["cwd"] == str(path.parent):
            left.append(process)
    assert left == []


def test_cli_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "grades.json"
    assert cli.main(["grade", str(SOLUTION), "--solutions", str(SOLUTIONS), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "total: 10/10" in printed
    assert [line.split()[:4] for line in printed.splitlines()[1:6]] == [
        ["id", "points", "earned", "status"], ["square", "3", "3", "passed"], ["mean", "3", "3", "passed"],
        ["scale", "2", "2", "passed"], ["safe_div", "2", "2", "passed"]]
    result = json.loads(out.read_text())
    assert set(result) == {"notebook", "exercises", "earned", "points"}
    assert result["notebook"] == str(SOLUTION) and (result["earned"], result["points"]) == (10, 10)
    assert all(set(e) == KEYS for e in result["exercises"])


def bad_notebooks(tmp_path):
    (tmp_path / "garbage.ipynb").write_text("this is not JSON")
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    (tmp_path / "folder.ipynb").mkdir()
    save(read(SOLUTION), tmp_path / "99_unknown.ipynb")  # no tplab.solution metadata, no such solution
    return {
        "not JSON": (tmp_path / "garbage.ipynb", "not a readable Jupyter notebook"),
        "JSON, not a notebook": (tmp_path / "list.ipynb", "not a readable Jupyter notebook"),
        "missing": (tmp_path / "nowhere.ipynb", "no such file"),
        "a directory": (tmp_path / "folder.ipynb", "is a directory"),
        "no solution": (tmp_path / "99_unknown.ipynb", "no solution notebook"),
    }


@pytest.mark.parametrize("case", ["not JSON", "JSON, not a notebook", "missing", "a directory", "no solution"])
def test_ungradable_notebooks_give_one_clear_line_and_exit_1(tmp_path, capsys, case):
    path, complaint = bad_notebooks(tmp_path)[case]
    with pytest.raises(GradingError, match=complaint):
        grade_notebook(path, SOLUTIONS)
    assert cli.main(["grade", str(path), "--solutions", str(SOLUTIONS)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tplab grade: error:") and complaint in err and str(path) in err
    assert len(err.splitlines()) == 1


def test_python_m_tplab_grades_what_it_can_and_exits_1_on_the_rest(tmp_path):
    bad = tmp_path / "garbage.ipynb"
    bad.write_text("{ not json")
    out = tmp_path / "grades.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tplab", "grade", str(bad), str(EXERCISE), str(tmp_path / "nowhere.ipynb"),
         "--solutions", str(SOLUTIONS), "--json", str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in proc.stderr
    assert "not a readable Jupyter notebook" in lines[0] and "no such file" in lines[1]
    assert "total: 0/10" in proc.stdout
    results = json.loads(out.read_text())  # several notebooks asked for: a list of those graded
    assert [(r["notebook"], r["earned"], r["points"]) for r in results] == [(str(EXERCISE), 0, 10)]
    assert bad.read_text() == "{ not json"


def test_error_message_is_one_clean_line():
    traceback = ["\x1b[31m---------------------------------------------------------------------------\x1b[39m",
                 "Cell \x1b[32mIn[7]\x1b[39m, line 2\n      1 x = 1\n\x1b[32m----> 2\x1b[39m assert x == 2\n",
                 "\x1b[31mAssertionError\x1b[39m: "]
    assert error_message("AssertionError", "", traceback) == "AssertionError (line 2: assert x == 2)"
    assert error_message("AssertionError", "\x1b[1mranks disagree\x1b[0m\nrank 0: 1\nrank 1: 2", []) == (
        "AssertionError: ranks disagree")


def test_stub_raised_on_a_rank_still_counts_as_not_attempted():
    wrapped = {"outcome": "error", "ename": "WorkerError", "traceback": [],
               "evalue": "rank 0 failed first: NotImplementedError: exercise ring: write your code here"}
    assert cell_problem(wrapped, True, 120) == (
        "not attempted", "WorkerError: rank 0 failed first: NotImplementedError: exercise ring: write your code here")
    other = dict(wrapped, evalue="rank 1 failed first: ValueError: bad shape")
    assert cell_problem(other, True, 120)[0] == "error"
    assert cell_problem(dict(other, ename="AssertionError", evalue="ranks disagree"), True, 120) == (
        "failed", "AssertionError: ranks disagree")


def test_what_a_cell_prints_is_capped_in_the_kernel(tmp_path, monkeypatch):
    printed = []
    monkeypatch.setattr(worker.ReplyOnlyClient, "output",
                        lambda self, outs, msg, *rest: printed.append(len(msg["content"].get("text", ""))))
    nb = nbformat.v4.new_notebook(cells=[
        new_code_cell("for _ in range(300):\n    print('x' * 9999)"),  # 3 MB
        new_code_cell("print('next cell')"),  # a fresh allowance per cell
    ])
    with worker.Kernel(nb, str(tmp_path), timeout=60, grace=5) as kernel:
        assert kernel.run(nb.cells[0], 0)["outcome"] == "ok"
        assert sum(printed) == worker.OUTPUT_LIMIT
        assert kernel.run(nb.cells[1], 1)["outcome"] == "ok"
        assert sum(printed) == worker.OUTPUT_LIMIT + len("next cell\n")

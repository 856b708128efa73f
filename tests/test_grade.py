"""`tplab grade`: reference checks restored, each exercise scored on its own, no hung grader."""
from __future__ import annotations

import json
import linecache
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell

from tplab import cli
from tplab.grading import worker
from tplab.grading.cells import check_of, strip_solutions
from tplab.grading.grade import GradingError, cell_problem, grade_notebook
from tplab.grading.report import TABLE_LIMIT, error_message, format_table
from tplab.grading.restore import restore_checks
from tplab.ranks.errors import Failure, WorkerError, choose_root_cause

FIXTURES = Path(__file__).parent / "fixtures" / "grading"
SOLUTIONS = FIXTURES / "solutions"
EXERCISE = FIXTURES / "exercises" / "01_demo.ipynb"
SOLUTION = SOLUTIONS / "01_demo.ipynb"
KEYS = {"id", "points", "earned", "status", "message"}


def read(path: Path):
    return nbformat.read(path, as_version=4)


def answered(**answers: str):
    """The exercise notebook with the solution's answers typed in, then `answers` (id -> source)."""
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
        assert exercise["message"] == (
            f"NotImplementedError: exercise {exercise['id']}: write your code here")


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
                           "    try:\n        time.sleep(0.1)\n"
                           "    except KeyboardInterrupt:\n        pass"),
        # Needs `math` from the first cell: only passes if the state was rebuilt after each restart.
        "safe-div-solution": ("def safe_div(a, b):\n    if b == 0:\n"
                              "        raise ZeroDivisionError\n"
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
        alive = process.info["status"] != psutil.STATUS_ZOMBIE
        if alive and process.info["cwd"] == str(path.parent):
            left.append(process)
    assert left == []


def test_cli_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "grades.json"
    assert cli.main(["grade", str(SOLUTION), "--solutions", str(SOLUTIONS),
                     "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "total: 10/10" in printed
    assert [line.split()[:4] for line in printed.splitlines()[1:6]] == [
        ["id", "points", "earned", "status"], ["square", "3", "3", "passed"],
        ["mean", "3", "3", "passed"], ["scale", "2", "2", "passed"],
        ["safe_div", "2", "2", "passed"]]
    result = json.loads(out.read_text())
    assert set(result) == {"notebook", "exercises", "earned", "points"}
    assert result["notebook"] == str(SOLUTION) and (result["earned"], result["points"]) == (10, 10)
    assert all(set(e) == KEYS for e in result["exercises"])


def bad_notebooks(tmp_path):
    (tmp_path / "garbage.ipynb").write_text("this is not JSON")
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    (tmp_path / "folder.ipynb").mkdir()
    # no tplab.solution metadata, no such solution
    save(read(SOLUTION), tmp_path / "99_unknown.ipynb")
    return {
        "not JSON": (tmp_path / "garbage.ipynb", "not a readable Jupyter notebook"),
        "JSON, not a notebook": (tmp_path / "list.ipynb", "not a readable Jupyter notebook"),
        "missing": (tmp_path / "nowhere.ipynb", "no such file"),
        "a directory": (tmp_path / "folder.ipynb", "is a directory"),
        "no solution": (tmp_path / "99_unknown.ipynb", "no solution notebook"),
    }


@pytest.mark.parametrize("case", ["not JSON", "JSON, not a notebook", "missing", "a directory",
                                  "no solution"])
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
        [sys.executable, "-m", "tplab", "grade", str(bad), str(EXERCISE),
         str(tmp_path / "nowhere.ipynb"), "--solutions", str(SOLUTIONS), "--json", str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in proc.stderr
    assert "not a readable Jupyter notebook" in lines[0] and "no such file" in lines[1]
    assert "total: 0/10" in proc.stdout
    results = json.loads(out.read_text())  # several notebooks asked for: a list of those graded
    assert [(r["notebook"], r["earned"], r["points"]) for r in results] == [(str(EXERCISE), 0, 10)]
    assert bad.read_text() == "{ not json"


def test_error_message_is_clean_and_keeps_an_assertions_lines():
    traceback = ["\x1b[31m" + "-" * 75 + "\x1b[39m",
                 "Cell \x1b[32mIn[7]\x1b[39m, line 2\n      1 x = 1\n"
                 "\x1b[32m----> 2\x1b[39m assert x == 2\n",
                 "\x1b[31mAssertionError\x1b[39m: "]
    assert error_message("AssertionError", "", traceback) == (
        "AssertionError (line 2: assert x == 2)")
    coloured = "\x1b[1mranks disagree\x1b[0m\nrank 0: 1\nrank 1: 2"
    assert error_message("AssertionError", coloured, []) == (
        "AssertionError: ranks disagree\nrank 0: 1\nrank 1: 2")
    # Other errors: their first paragraph (a blank line starts a traceback or a stack dump).
    dumped = "launch timed out after 5 s.\nLook at rank 1.\n\n--- where rank 1 was ---\n  File x"
    assert error_message("WorkerError", dumped, []) == (
        "WorkerError: launch timed out after 5 s.\nLook at rank 1.")


def test_stub_raised_on_a_rank_still_counts_as_not_attempted():
    wrapped = {"outcome": "error", "ename": "WorkerError", "traceback": [],
               "evalue": "rank 0 failed first: NotImplementedError: exercise ring: "
                         "write your code here"}
    assert cell_problem(wrapped, True, 120) == (
        "not attempted", "NotImplementedError on rank 0: exercise ring: write your code here")
    other = dict(wrapped, evalue="rank 1 failed first: ValueError: bad shape")
    assert cell_problem(other, True, 120) == ("error", "ValueError on rank 1: bad shape")
    asserted = dict(other, ename="AssertionError", evalue="ranks disagree")
    assert cell_problem(asserted, True, 120) == ("failed", "AssertionError: ranks disagree")


def raised(exc_type, message, *, where="the_check"):
    """An exception of `exc_type` with a real traceback (raised in a function named `where`)."""
    namespace = {}
    exec(f"def {where}():\n    raise {exc_type.__name__}({message!r})", namespace)
    try:
        namespace[where]()
    except exc_type as exc:
        return exc


def worker_error(root: BaseException, *echoes: BaseException) -> dict:
    """A cell record for the WorkerError tplab.launch raises when rank 1 fails with `root`."""
    failures = {1: Failure.from_exception(1, root, 1.0)}
    failures.update({rank: Failure.from_exception(rank, e, 2.0 + rank)
                     for rank, e in enumerate(echoes)})
    error = WorkerError.from_failures(choose_root_cause(failures), failures)
    return {"outcome": "error", "ename": type(error).__name__, "evalue": str(error),
            "traceback": []}


def test_assertion_inside_a_rank_is_failed_with_its_own_message():
    message = "rank 1: got [3.0], expected [6.0]\nall-reduce first, then multiply by 2"
    record = worker_error(raised(AssertionError, message),
                          ConnectionError("Connection closed by peer"))
    assert "failed first: AssertionError" in record["evalue"] and "Traceback" in record["evalue"]
    assert cell_problem(record, True, 120) == ("failed", f"AssertionError on rank 1: {message}")
    # Outside a check cell an assertion is the learner's own code failing: an error, same message.
    assert cell_problem(record, False, 120) == ("error", f"AssertionError on rank 1: {message}")


def test_bare_assert_inside_a_rank_names_its_line(monkeypatch):
    source = "def the_check():\n    x = 3\n    assert x == 2\n"
    # Compiled here, not written in this file, so pytest does not rewrite the assert; its source is
    # registered with linecache the way IPython registers a cell's, so the traceback shows it.
    monkeypatch.setitem(linecache.cache, "<cell-the-check>",
                        (len(source), None, source.splitlines(True), "<cell-the-check>"))
    namespace = {}
    exec(compile(source, "<cell-the-check>", "exec"), namespace)
    try:
        namespace["the_check"]()
    except AssertionError as exc:
        record = worker_error(exc)
    status, message = cell_problem(record, True, 120)
    assert status == "failed"
    assert re.fullmatch(r"AssertionError on rank 1 \(line \d+ in the_check: assert x == 2\)",
                        message), message


def test_other_exceptions_inside_a_rank_stay_errors_and_a_peers_stub_does_not_excuse_them():
    stub = NotImplementedError("exercise ring: write your code here")
    record = worker_error(
        raised(TypeError, "unsupported operand type(s) for +: 'int' and 'str'"), stub)
    # a peer raised the stub after rank 1's TypeError
    assert "write your code here" in record["evalue"]
    assert cell_problem(record, True, 120) == (
        "error", "TypeError on rank 1: unsupported operand type(s) for +: 'int' and 'str'")
    wrong = worker_error(raised(AssertionError, "expected [6.0]"), stub)
    assert cell_problem(wrong, True, 120) == ("failed", "AssertionError on rank 1: expected [6.0]")
    assert cell_problem(worker_error(stub), True, 120) == (
        "not attempted", "NotImplementedError on rank 1: exercise ring: write your code here")
    # A timeout is no assertion, even with one among the failures it lists.
    timed_out = {"outcome": "error", "ename": "WorkerError", "traceback": [], "evalue": (
        "launch timed out after 60 s; still running: rank 0 (killed).\n"
        "  rank 1 had failed: AssertionError: expected [6.0]\n\n"
        "--- where rank 0 was ---\n  File ...")}
    assert cell_problem(timed_out, True, 120) == ("error", (
        "WorkerError: launch timed out after 60 s; still running: rank 0 (killed).\n"
        "  rank 1 had failed: AssertionError: expected [6.0]"))


RANKS = FIXTURES / "ranks" / "solutions"
RANKS_SOLUTION = RANKS / "02_ranks.ipynb"


def test_checks_that_launch_ranks_pass_on_the_solution():
    result = grade_notebook(RANKS_SOLUTION, RANKS)
    assert [(e["id"], e["earned"], e["status"]) for e in result["exercises"]] == [
        ("double", 2, "passed"), ("label", 1, "passed"), ("gather", 1, "passed")]


def test_a_wrong_answer_in_a_rank_fails_an_exception_errs_a_stub_is_not_attempted(
        tmp_path, capsys, monkeypatch):
    nb = read(RANKS_SOLUTION)
    answers = {
        "double-solution": ("def doubled_sum(x):\n    total = x.clone()\n"
                            "    dist.all_reduce(total)\n    return total"),
        "label-solution": "def rank_label():\n    return dist.get_rank() + '/2'",
    }
    for cell in nb.cells:
        if cell.id in answers:
            cell.source = answers[cell.id]
        elif cell.id == "gather-solution":
            cell.source = strip_solutions(cell.source, "gather")
    path = save(nb, tmp_path / "02_ranks.ipynb")
    out = tmp_path / "grades.json"
    monkeypatch.setenv("COLUMNS", "100")
    assert cli.main(["grade", str(path), "--solutions", str(RANKS), "--json", str(out)]) == 0
    ex = by_id(json.loads(out.read_text()))
    assert (ex["double"]["status"], ex["double"]["earned"]) == ("failed", 0)
    # The whole assertion: no WorkerError wrapping, no traceback, not cut before its actionable end.
    assert re.fullmatch(
        r"AssertionError on rank [01]: rank [01] of 2: "
        r"doubled_sum\(tensor\(\[[12]\.0\]\)\) returned \[3\.0\], "
        r"expected \[6\.0\]: the sum .* all-reduce first, then multiply by 2\.",
        ex["double"]["message"]), ex["double"]["message"]
    assert len(ex["double"]["message"]) > 300
    assert (ex["label"]["status"], ex["label"]["earned"]) == ("error", 0)
    assert re.fullmatch(
        r"TypeError on rank [01]: unsupported operand type\(s\) for \+: 'int' and 'str'",
        ex["label"]["message"]), ex["label"]["message"]
    assert ex["gather"]["status"] == "not attempted"
    assert re.fullmatch(r"NotImplementedError on rank [01]: exercise gather: write your code here",
                        ex["gather"]["message"]), ex["gather"]["message"]
    # The table shows the same whole message, wrapped under the message column.
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == str(path)
    assert max(len(line) for line in printed.splitlines()[1:]) <= 100
    assert " ".join(printed.split()).count(" ".join(ex["double"]["message"].split())) == 1
    assert "Traceback" not in printed and "failed first" not in printed


def test_messages_are_kept_whole_and_the_table_cuts_the_middle():
    hint = "expected 9 (3 squared): return x * x, not x * 2"
    long = ("square(3) returned 6; " + "the values seen were "
            + ", ".join(map(str, range(400))) + "; " + hint)
    message = error_message("AssertionError", long, [])
    assert message == f"AssertionError: {long}"  # whole, for --json
    result = {"notebook": "nb.ipynb", "earned": 0, "points": 3, "exercises": [
        {"id": "square", "points": 3, "earned": 0, "status": "failed", "message": message}]}
    table = format_table(result, width=80)
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines)
    shown = " ".join(" ".join(line.split()) for line in lines[2:-1])
    assert shown.startswith("square 3 0 failed AssertionError: square(3) returned 6;")
    assert shown.endswith(hint)  # the end, which says what to do, survives
    assert "characters cut" in shown and len(shown) < TABLE_LIMIT + 40
    # Continuation lines start under the message column.
    column = lines[2].index("AssertionError")
    assert all(line[:column].strip() == "" for line in lines[3:-1])
    # A short message stays on one line, as before.
    brief = "AssertionError: square(3) should be 9"
    short = dict(result, exercises=[dict(result["exercises"][0], message=brief)])
    assert format_table(short, width=80).splitlines()[2].endswith(f"failed  {brief}")


def test_what_a_cell_prints_is_capped_in_the_kernel(tmp_path, monkeypatch):
    printed = []
    def output(self, outs, msg, *rest):
        printed.append(len(msg["content"].get("text", "")))

    monkeypatch.setattr(worker.ReplyOnlyClient, "output", output)
    nb = nbformat.v4.new_notebook(cells=[
        new_code_cell("for _ in range(300):\n    print('x' * 9999)"),  # 3 MB
        new_code_cell("print('next cell')"),  # a fresh allowance per cell
    ])
    with worker.Kernel(nb, str(tmp_path), timeout=60, grace=5) as kernel:
        assert kernel.run(nb.cells[0], 0)["outcome"] == "ok"
        assert sum(printed) == worker.OUTPUT_LIMIT
        assert kernel.run(nb.cells[1], 1)["outcome"] == "ok"
        assert sum(printed) == worker.OUTPUT_LIMIT + len("next cell\n")


def test_a_check_function_replaced_by_the_learner_earns_nothing(tmp_path):
    """A learner's cell that swaps a tplab.checks function for a stand-in does not get it used:
    the restored check verifies its imports first (tplab.grading.untampered). One notebook: an
    honest exercise, then one whose cell patches the check module."""
    from nbformat.v4 import new_notebook

    check = ("from tplab.checks.lesson08 import check_choices\n"
             "check_choices({}, ids=('coll-halves',))")

    def notebook(cheat: str):
        return new_notebook(cells=[
            new_code_cell('honest = {"coll-halves": "A"}', id="honest",
                          metadata={"tplab": {"exercise": "honest"}}),
            new_code_cell(check.format("honest"), id="honest-check",
                          metadata={"tplab": {"check": "honest", "points": 1}}),
            new_code_cell(cheat + 'cheat = {"coll-halves": "B"}', id="cheat",
                          metadata={"tplab": {"exercise": "cheat"}}),
            new_code_cell(check.format("cheat"), id="cheat-check",
                          metadata={"tplab": {"check": "cheat", "points": 2}})])

    solutions = tmp_path / "solutions"
    save(notebook('cheat = {"coll-halves": "A"}\n'), solutions / "09_guard.ipynb")
    # the module found at run time (the source names no check module: source_rules cannot tell)
    patch = ("import sys\nm = next(v for k, v in sys.modules.items() if k.endswith('08'))\n"
             "m.check_choices = lambda *a, **k: None\n")
    result = grade_notebook(save(notebook(patch), tmp_path / "a" / "09_guard.ipynb"), solutions)
    assert [(e["id"], e["earned"]) for e in result["exercises"]] == [("honest", 1), ("cheat", 0)]
    assert "replaced by code in this notebook" in by_id(result)["cheat"]["message"]
    # named in the source: refused before the check runs (tplab.grading.source_rules)
    patch = "import tplab.checks.lesson08 as m\nm.check_choices = lambda *a, **k: None\n"
    result = grade_notebook(save(notebook(patch), tmp_path / "b" / "09_guard.ipynb"), solutions)
    assert [(e["id"], e["earned"]) for e in result["exercises"]] == [("honest", 1), ("cheat", 0)]
    assert "uses tplab.checks" in by_id(result)["cheat"]["message"]


def test_a_partial_or_a_builtin_in_a_checks_place_is_found_too(monkeypatch):
    import functools

    import tplab.checks.lesson08 as module
    from tplab.grading.untampered import guard_line, verify

    verify("tplab.checks.lesson08", ("check_choices",))  # the course's own: nothing raised
    for stand_in in (functools.partial(print), print, functools.partial(lambda *a: None)):
        monkeypatch.setattr(module, "check_choices", stand_in)
        with pytest.raises(AssertionError, match="replaced by code"):
            verify("tplab.checks.lesson08", ("check_choices",))

    def defined_in_a_cell(*args):
        return None

    defined_in_a_cell.__module__ = "__main__"  # what a notebook cell's function carries
    monkeypatch.setattr(module, "check_choices", defined_in_a_cell)
    with pytest.raises(AssertionError, match="lesson08.check_choices replaced by code"):
        verify("tplab.checks", ("lesson08",))  # `from tplab.checks import lesson08`
    assert guard_line("from tplab.checks.x import (\n a,  # why\n b as c,\n)\nrun()\n") == (
        "from tplab.grading.untampered import verify; verify('tplab.checks.x', ('a', 'b'))"
        "  # tplab grade: the course's own checks\n")
    assert guard_line("x = 1") == ""


class _Starts:
    """A stand-in for nbclient's setup_kernel: kernels that die while starting, then one that
    starts."""

    def __init__(self, deaths: int, message="Kernel died before replying to kernel_info"):
        self.deaths, self.message, self.calls = deaths, message, 0

    def __call__(self):
        starts = self

        class Session:
            def __enter__(self):
                starts.calls += 1
                if starts.calls <= starts.deaths:
                    raise RuntimeError(starts.message)

        return Session()


def test_a_kernel_that_dies_while_starting_is_replaced(monkeypatch):
    """Forced: the kernel of a busy machine dies before kernel_info (seen under two pytest
    workers, each grading two notebooks): it ran no cell, so another kernel is started."""
    monkeypatch.setattr(worker.time, "sleep", lambda s: None)
    kernel = worker.Kernel(nbformat.v4.new_notebook(), ".", timeout=5, grace=1)
    kernel.client.setup_kernel = starts = _Starts(deaths=2)
    kernel._start()
    assert starts.calls == 3
    kernel.client.setup_kernel = starts = _Starts(deaths=3)
    with pytest.raises(RuntimeError, match="kernel_info"):
        kernel._start()              # three deaths in a row: the error, as before
    kernel.client.setup_kernel = starts = _Starts(deaths=2, message="Kernel didn't respond in "
                                                  "60 seconds")  # silent: ran nothing either
    kernel._start()
    assert starts.calls == 3
    kernel.client.setup_kernel = starts = _Starts(deaths=1, message="No such kernel")
    with pytest.raises(RuntimeError, match="No such kernel"):
        kernel._start()              # anything else is not retried
    assert starts.calls == 1

"""The grader refuses answers that use the checks' own modules (`tplab.grading.source_rules`):
a check hides its references only while it calls the learner's function, so a cell that
imports them can look the answers up before or after. Prose and other tplab modules do not
count; a course cell may import what the solution's cell imports."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tplab.grading.grade import grade_notebook
from tplab.grading.source_rules import refuse, refused_cells, uses

FIXTURES = Path(__file__).parent / "fixtures" / "grading"
CHECKED = {"stated_parts", "check_scale"}  # names the notebook imported from tplab.checks

REACHES = [
    "import tplab.checks.lesson06",
    "import tplab.checks.lesson06 as l6",
    "from tplab.checks import lesson06 as _l6",
    "from tplab.checks.lesson06_classify import SCENARIOS",
    "from tplab import checks",
    "import tplab\nx = tplab.checks.lesson06.reference_schedule",
    "tp = __import__('tplab')\ny = tp.checks",
    "import importlib\nm = importlib.import_module('tplab.checks.lesson04_kv')",
    "m = __import__('tplab.checks.lesson04_kv', fromlist=['x'])",
    "m = __import__('tplab', fromlist=['checks'])",
    "import importlib\nm = importlib.import_module('.checks.lesson06', 'tplab')",
    "import importlib\nm = importlib.import_module('tplab.checks.' + 'lesson04_kv')",
    "m = importlib.import_module(f'tplab.checks.lesson06')",
    "import tplab\nm = getattr(tplab, 'checks')",
    "import sys\nm = sys.modules['tplab.checks.lesson06']",
    "import sys\nm = sys.modules['tplab'].checks",
    "import runpy\nd = runpy.run_module('tplab.checks.lesson06')",
    "exec('from tplab.checks import lesson06 as l6')",
    "%run -m tplab.checks.lesson06",
    "src = open('tplab/checks/lesson06.py').read()",
    "from pathlib import Path\np = Path('tplab') / 'checks' / 'lesson06.py'",
    "g = stated_parts.__globals__",
    "flat = check_scale.__globals__['sys'].modules",
    "import inspect\nm = inspect.getmodule(stated_parts)",
    "g = vars(check_scale)",
    "g = getattr(stated_parts, '__globals__')",
    "def f(x):\n    from tplab.checks import lesson01_scale\n    return x",
]

DOES_NOT = [
    "# from tplab.checks import lesson06: not needed here\nx = 1",
    '"""Not tplab.checks: written by hand (see tplab.checks.lesson06 for how it is graded)."""',
    "print('the answers in tplab.checks are hidden while your function runs')",
    "note = 'see tplab.checks for how this is graded'",
    "md = '''## Notes\nThe check (`tplab.checks.lesson06`) draws cases.'''",
    "from tplab.comm import cost\nt = cost.ring_all_reduce_time",
    "import tplab.cost\nimport tplab.tp\nx = tplab.cost",
    "from tplab.viz import serving_checks",
    "from tplab.serve.scheduling import Scheduler",
    "class A:\n    checks = 3\n\n\na = A()\nb = a.checks",
    "parts = stated_parts(1, 2)\nname = flat_ring_seconds.__name__",
    "checks = ['tplab', 'checks']",
    "def f(:",  # not Python: it raises when it runs
    "%timeit sum(range(10))",
    "!ls tplab",
]


@pytest.mark.parametrize("source", REACHES)
def test_a_use_of_the_checks_modules_is_found(source):
    assert uses(source, {"tplab"}, CHECKED), source


@pytest.mark.parametrize("source", DOES_NOT)
def test_prose_and_other_modules_do_not_count(source):
    assert uses(source, {"tplab"}, CHECKED) == [], source


def test_a_name_for_tplab_from_another_cell_counts():
    assert uses("m = t.checks.lesson06", {"tplab", "t"})
    assert not uses("m = t.checks.lesson06", {"tplab"})


def _notebooks(course: str, answer: str, extra: str | None = None):
    """(solution, merged): a course cell, an exercise, its check, a second exercise and check."""
    def cells(course_source, answer_source):
        made = [new_markdown_cell("Say `tplab.checks` in prose.", id="text"),
                new_code_cell(course_source, id="course"),
                new_code_cell(answer_source, id="ex1", metadata={"tplab": {"exercise": "a"}}),
                new_code_cell("from tplab.checks.lesson06 import check_schedule\nassert f() == 1",
                              id="check1", metadata={"tplab": {"check": "a", "points": 2}}),
                new_code_cell("def g():\n    return 2", id="ex2",
                              metadata={"tplab": {"exercise": "b"}}),
                new_code_cell("assert g() == 2", id="check2",
                              metadata={"tplab": {"check": "b", "points": 1}})]
        return new_notebook(cells=made)
    solution = cells("from tplab.checks.lesson06_classify import JOBS", "def f():\n    return 1")
    merged = cells(course, answer)
    if extra is not None:
        merged.cells.insert(4, new_code_cell(extra, id="mine"))
    return solution, merged


def test_only_the_learners_cells_are_refused():
    plain = "from tplab.checks.lesson06_classify import JOBS"
    solution, merged = _notebooks(plain, "def f():\n    return 1")
    assert refused_cells(solution, solution) == {}
    assert refused_cells(merged, solution) == {}  # the course cell may import what it imports
    _, merged = _notebooks(plain, "from tplab.checks import lesson06 as l6\n\ndef f():\n    ...")
    assert list(refused_cells(merged, solution)) == [2]
    message = refused_cells(merged, solution)[2]
    assert message.startswith("exercise cell uses tplab.checks (the checks' own answers): "
                              "write the answer yourself")
    assert "line 1: from tplab.checks import lesson06 as l6" in message
    _, merged = _notebooks(plain + ", SCENARIOS", "def f():\n    return 1")  # a course cell edited
    assert list(refused_cells(merged, solution)) == [1]
    _, merged = _notebooks(plain, "def f():\n    return 1", extra="g = check_schedule.__globals__")
    assert list(refused_cells(merged, solution)) == [4]
    assert refused_cells(merged, solution)[4].startswith("cell 5 uses tplab.checks")


def test_refusal_zeroes_its_exercise_and_later_ones_that_earned():
    layout = {"a": {"checks": [(3, 2)], "work": [2]}, "b": {"checks": [(6, 1)], "work": [5]},
              "c": {"checks": [(8, 1)], "work": [7]}}
    results = [{"id": "a", "points": 2, "earned": 2, "status": "passed", "message": ""},
               {"id": "b", "points": 1, "earned": 1, "status": "passed", "message": ""},
               {"id": "c", "points": 1, "earned": 0, "status": "error", "message": "NameError"}]
    refuse(results, layout, {5: "exercise cell uses tplab.checks"})
    assert results[0]["earned"] == 2 and results[0]["status"] == "passed"  # before: untouched
    assert results[1] == {"id": "b", "points": 1, "earned": 0, "status": "failed",
                          "message": "exercise cell uses tplab.checks"}
    assert results[2]["status"] == "error" and results[2]["message"] == "NameError"


def test_grading_refuses_an_exercise_that_imports_the_checks(tmp_path):
    nb = nbformat.read(FIXTURES / "exercises" / "01_demo.ipynb", as_version=4)
    solution = {c.id: c for c in nbformat.read(FIXTURES / "solutions" / "01_demo.ipynb",
                                               as_version=4).cells}
    for cell in nb.cells:
        if "exercise" in cell.metadata.get("tplab", {}):
            cell.source = solution[cell.id].source
        if cell.id == "scale-solution":  # right answers, and a look at the checks' modules
            cell.source = "import tplab.checks.forbid  # just looking\n" + cell.source
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(nb, path)
    result = {e["id"]: e for e in grade_notebook(path, FIXTURES / "solutions")["exercises"]}
    assert result["square"]["earned"] == result["square"]["points"] > 0
    assert result["scale"]["earned"] == 0 and result["scale"]["status"] == "failed"
    assert "uses tplab.checks" in result["scale"]["message"]
    assert result["safe_div"]["earned"] == 0  # checked after: what the cell took stays

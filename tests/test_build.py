"""`tplab build`: exercises derived from solutions, reproducibly, and `--check` catching drift."""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tplab.grading import build as build_cmd
from tplab.grading.build import BuildError, build
from tplab.grading.cells import BEGIN, END, stable_cell_id, strip_solutions

FIXTURES = Path(__file__).parent / "fixtures" / "grading"
NAME = "01_demo.ipynb"


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    build_cmd.add_arguments(parser)
    return build_cmd.run(parser.parse_args([str(a) for a in argv]))


@pytest.fixture
def course(tmp_path):
    """A private copy of the fixture solutions, built into an exercises dir."""
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    shutil.copytree(FIXTURES / "solutions", solutions)
    assert [p.kind for p in build(solutions, exercises)] == ["missing"]
    return solutions, exercises


def cells_by_id(path: Path) -> dict:
    return {cell.id: cell for cell in nbformat.read(path, as_version=4).cells}


def test_fixture_exercises_are_up_to_date():
    assert build(FIXTURES / "solutions", FIXTURES / "exercises", check=True) == []


def test_stub_replaces_each_solution_block_at_its_indentation(course):
    solutions, exercises = course
    cells = cells_by_id(exercises / NAME)
    assert cells["square-solution"].source == (
        "def square(x):\n"
        "    # YOUR CODE HERE\n"
        '    raise NotImplementedError("exercise square: write your code here")'
    )
    assert cells["mean-solution"].source == (
        "values = [1.0, 2.0, 3.0, 4.0]\n"
        "# YOUR CODE HERE\n"
        'raise NotImplementedError("exercise mean: write your code here")\n'
        'print(f"mean = {mean}")'
    )
    scale = cells["scale-solution"].source
    assert scale.count('raise NotImplementedError("exercise scale: write your code here")') == 2
    assert "def total(xs):\n    # YOUR CODE HERE\n" in scale
    for cell in cells.values():
        assert BEGIN not in cell.source and END not in cell.source
        for answer in ("x * x", "sum(values) / len(values)", "k * x for x", "return a / b"):
            assert answer not in cell.source or cell.metadata.get("tplab", {}).get("check")


def test_everything_but_answers_is_kept(course):
    solution, exercise = (nbformat.read(d / NAME, as_version=4) for d in course)
    assert [c.id for c in exercise.cells] == [c.id for c in solution.cells]
    for sol, ex in zip(solution.cells, exercise.cells):
        assert ex.metadata.get("tplab") == sol.metadata.get("tplab")
        if "exercise" not in sol.metadata.get("tplab", {}):
            assert ex.source == sol.source
    assert exercise.metadata["tplab"] == {"solution": "01_demo"}
    assert exercise.metadata["kernelspec"] == solution.metadata["kernelspec"]
    assert exercise.nbformat_minor >= 5


def test_outputs_execution_counts_and_timings_are_cleared(course):
    solution, exercise = (nbformat.read(d / NAME, as_version=4) for d in course)
    # The fixture solution has them, so this test can fail.
    assert any(c.get("outputs") for c in solution.cells)
    assert any(c.get("execution_count") for c in solution.cells)
    assert any("execution" in c.metadata for c in solution.cells)
    for cell in exercise.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        assert "execution" not in cell.metadata


def test_rebuild_is_byte_identical_and_touches_nothing(course, tmp_path):
    solutions, exercises = course
    target = exercises / NAME
    before, mtime = target.read_bytes(), target.stat().st_mtime_ns
    assert before.endswith(b"}\n")
    assert build(solutions, exercises) == []
    assert target.read_bytes() == before and target.stat().st_mtime_ns == mtime
    build(solutions, tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / NAME).read_bytes() == before


@pytest.mark.parametrize("minor", [4, 5])
def test_cells_without_ids_get_the_same_ids_every_build(tmp_path, minor):
    nb = new_notebook(cells=[new_markdown_cell("# old"), new_code_cell("x = 1")])
    nb.nbformat_minor = minor
    for cell in nb.cells:
        del cell["id"]
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    # Written by hand: nbformat.write would validate, and validation invents random ids.
    (solutions / "02_old.ipynb").write_text(json.dumps(nb))
    build(solutions, tmp_path / "a")
    build(solutions, tmp_path / "b")
    a, b = ((tmp_path / d / "02_old.ipynb").read_bytes() for d in "ab")
    assert a == b
    built = nbformat.read(tmp_path / "a" / "02_old.ipynb", as_version=4)
    assert [c.id for c in built.cells] == [stable_cell_id("02_old", i) for i in range(2)]


def test_check_names_missing_stale_and_extra_files_and_writes_nothing(course, capsys):
    solutions, exercises = course
    # -> missing
    nbformat.write(nbformat.read(solutions / NAME, as_version=4), solutions / "02_more.ipynb")
    stale = exercises / NAME
    edited = stale.read_text().replace("write your code here", "my answer")
    stale.write_text(edited)  # -> stale
    extra = exercises / "09_gone.ipynb"
    shutil.copy(stale, extra)  # -> extra

    problems = build(solutions, exercises, check=True)
    assert {(p.kind, p.path.name) for p in problems} == {
        ("missing", "02_more.ipynb"), ("stale", NAME), ("extra", "09_gone.ipynb")}
    assert run_cli("--solutions", solutions, "--exercises", exercises, "--check") == 1
    err = capsys.readouterr().err
    for name in ("02_more.ipynb", NAME, "09_gone.ipynb"):
        assert name in err
    assert "tplab build" in err and "make build" in err
    # --check wrote nothing
    assert stale.read_text() == edited and extra.exists()
    assert not (exercises / "02_more.ipynb").exists()

    assert len(build(solutions, exercises)) == 3
    assert not extra.exists() and (exercises / "02_more.ipynb").exists()
    assert run_cli("--solutions", solutions, "--exercises", exercises, "--check") == 0
    assert "up to date" in capsys.readouterr().out


def test_editing_a_solution_makes_its_exercise_stale(course):
    solutions, exercises = course
    nb = nbformat.read(solutions / NAME, as_version=4)
    nb.cells[0].source += "\nOne more sentence."
    nbformat.write(nb, solutions / NAME)
    problems = build(solutions, exercises, check=True)
    assert [(p.kind, p.path.name) for p in problems] == [("stale", NAME)]


@pytest.mark.parametrize("cell, complaint", [
    (new_code_cell(f"x = 1\n{BEGIN}\nx = 2", metadata={"tplab": {"exercise": "e"}}),
     "never closed"),
    (new_code_cell(f"{END}\nx = 2", metadata={"tplab": {"exercise": "e"}}), "without"),
    (new_code_cell(f"{BEGIN}\n{BEGIN}\nx\n{END}", metadata={"tplab": {"exercise": "e"}}), "inside"),
    (new_code_cell(f"{BEGIN}\nx = 2\n{END}"), "needs metadata"),
    (new_markdown_cell(f"{BEGIN}\nthe answer\n{END}"), "only allowed in code cells"),
    (new_code_cell("assert True", metadata={"tplab": {"check": "e"}}), "points"),
])
def test_malformed_solutions_are_refused_with_file_and_cell(tmp_path, capsys, cell, complaint):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nbformat.write(new_notebook(cells=[new_markdown_cell("# bad"), cell]),
                   solutions / "03_bad.ipynb")
    with pytest.raises(BuildError, match=complaint) as raised:
        build(solutions, tmp_path / "exercises")
    assert "03_bad.ipynb, cell 1" in str(raised.value)
    assert not (tmp_path / "exercises" / "03_bad.ipynb").exists()
    assert run_cli("--solutions", solutions, "--exercises", tmp_path / "exercises") == 1
    assert complaint in capsys.readouterr().err


@pytest.mark.parametrize("text, complaint", [
    ("{ not json", "cannot read"),
    ('{"cells": [{"cell_type": "code"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
     "not a valid notebook"),
])
def test_unreadable_solutions_are_refused(tmp_path, capsys, text, complaint):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    (solutions / "04_broken.ipynb").write_text(text)
    assert run_cli("--solutions", solutions, "--exercises", tmp_path / "exercises") == 1
    err = capsys.readouterr().err
    assert complaint in err and "04_broken.ipynb" in err and len(err.strip().splitlines()) == 1


def test_missing_solutions_dir_is_a_clear_error(tmp_path, capsys):
    assert run_cli("--solutions", tmp_path / "nope", "--exercises", tmp_path / "ex", "--check") == 1
    assert "no solutions directory" in capsys.readouterr().err


def test_strip_solutions_keeps_surrounding_code_and_deep_indentation():
    source = (
        "class A:\n"
        "    def f(self):\n"
        "        y = 0\n"
        f"        {BEGIN}\n"
        "        y = 42\n"
        f"        {END}\n"
        "        return y\n"
    )
    assert strip_solutions(source, "deep") == (
        "class A:\n"
        "    def f(self):\n"
        "        y = 0\n"
        "        # YOUR CODE HERE\n"
        '        raise NotImplementedError("exercise deep: write your code here")\n'
        "        return y\n"
    )

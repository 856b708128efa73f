"""Write `exercises/` from `solutions/`, and tell when `exercises/` has fallen behind.

Lesson authors write each exercise once, as working code with its answer fenced
by `### BEGIN SOLUTION` / `### END SOLUTION` (see `tplab.grading.cells`). What a
learner opens is derived from that: answers replaced by a stub that raises
`NotImplementedError`, outputs cleared. Deriving it by a program, never by hand,
means the two versions cannot drift apart, and `tplab build --check` (run by
`make test`) fails the moment someone edits a solution and forgets to rebuild.

The output is byte-for-byte reproducible: cell ids come from the solution (or
from the notebook's name and the cell's position), and notebooks are written
with nbformat's stable JSON layout. Rebuilding an up-to-date tree changes no file.
"""
from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tplab import paths
from tplab.grading.cells import (
    NotebookConventionError,
    check_of,
    check_points,
    ensure_cell_ids,
    exercise_of,
    has_markers,
    read_notebook,
    strip_solutions,
)

# Cell metadata that records when a cell last ran: noise in a built notebook.
VOLATILE_METADATA = ("execution", "ExecuteTime")


class BuildError(Exception):
    """The exercises cannot be built (the message says which file and why)."""


@dataclass(frozen=True)
class Problem:
    """One way `exercises/` differs from what `solutions/` builds."""

    kind: str  # "missing", "stale" or "extra"
    path: Path
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {shown(self.path)} ({self.detail})"


def shown(path: Path) -> str:
    """A path as a learner would type it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def exercise_cell(cell) -> None:
    """Turn one solution cell into its exercise form, in place."""
    if has_markers(cell.source):
        if cell.cell_type != "code":
            raise NotebookConventionError("solution markers are only allowed in code cells")
        exercise_id = exercise_of(cell)
        if not exercise_id:
            raise NotebookConventionError(
                'a solution cell needs metadata {"tplab": {"exercise": "<id>"}}')
        cell.source = strip_solutions(cell.source, exercise_id)
    if check_of(cell) is not None:
        check_points(cell)  # raises on missing or bad points
    for key in VOLATILE_METADATA:
        cell.metadata.pop(key, None)
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None


def exercise_notebook(solution_nb, stem: str):
    """The exercise notebook built from a solution notebook named `stem` (input unchanged)."""
    nb = copy.deepcopy(solution_nb)
    try:
        ensure_cell_ids(nb, stem)
    except NotebookConventionError as error:
        raise NotebookConventionError(f"{stem}.ipynb: {error}") from None
    for index, cell in enumerate(nb.cells):
        try:
            exercise_cell(cell)
        except NotebookConventionError as error:
            raise NotebookConventionError(f"{stem}.ipynb, cell {index}: {error}") from None
    nb.metadata["tplab"] = {"solution": stem}
    return nb


def render(nb) -> bytes:
    """A notebook as the bytes `nbformat.write` would put on disk."""
    text = nbformat.writes(nb)
    if not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8")


def read_solution(path: Path):
    """Read a solution notebook, give its cells ids and validate it.

    Any failure becomes a BuildError naming the file.
    """
    try:
        nb = read_notebook(path)
        ensure_cell_ids(nb, path.stem)
        nbformat.validate(nb)
    except NotebookConventionError as error:
        raise BuildError(f"{shown(path)}: {error}") from None
    except nbformat.ValidationError as error:
        raise BuildError(
            f"{shown(path)} is not a valid notebook: {str(error.message)[:200]}") from None
    except Exception as error:  # nbformat raises several types for unreadable files
        raise BuildError(f"cannot read {shown(path)}: {error}") from None
    return nb


def expected_exercises(solutions_dir: Path) -> dict[str, bytes]:
    """File name -> bytes of every exercise notebook that `solutions_dir` builds."""
    if not solutions_dir.is_dir():
        raise BuildError(f"no solutions directory at {shown(solutions_dir)}")
    built = {}
    for path in sorted(solutions_dir.glob("*.ipynb")):
        try:
            built[path.name] = render(exercise_notebook(read_solution(path), path.stem))
        except NotebookConventionError as error:
            raise BuildError(f"{shown(path.parent)}/{error}") from None
    return built


def compare(expected: dict[str, bytes], exercises_dir: Path) -> list[Problem]:
    """Every file in `exercises_dir` that is missing, stale or extra, in name order."""
    problems = []
    for name, content in expected.items():
        target = exercises_dir / name
        if not target.exists():
            problems.append(Problem("missing", target, "its solution has no exercise yet"))
        elif target.read_bytes() != content:
            problems.append(Problem("stale", target, "differs from what its solution builds"))
    if exercises_dir.is_dir():
        for target in sorted(exercises_dir.glob("*.ipynb")):
            if target.name not in expected:
                problems.append(Problem("extra", target, "no solution notebook of that name"))
    return problems


def build(solutions_dir=None, exercises_dir=None, check: bool = False) -> list[Problem]:
    """Make `exercises_dir` match `solutions_dir`; return what differed before.

    With `check=True` nothing is written: an empty list means up to date.
    Otherwise missing and stale exercise notebooks are (re)written, extra ones
    (whose solution is gone) are removed, and untouched files keep their mtime.
    """
    solutions_dir = Path(solutions_dir or paths.SOLUTIONS)
    exercises_dir = Path(exercises_dir or paths.EXERCISES)
    expected = expected_exercises(solutions_dir)
    problems = compare(expected, exercises_dir)
    if not check:
        exercises_dir.mkdir(parents=True, exist_ok=True)
        for problem in problems:
            if problem.kind == "extra":
                problem.path.unlink()
            else:
                problem.path.write_bytes(expected[problem.path.name])
    return problems


def add_arguments(parser) -> None:
    parser.add_argument("--solutions", type=Path, default=paths.SOLUTIONS, metavar="DIR",
                        help="solution notebooks to build from (default: %(default)s)")
    parser.add_argument("--exercises", type=Path, default=paths.EXERCISES, metavar="DIR",
                        help="where the exercise notebooks go (default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the exercises are out of date")


def run(args) -> int:
    try:
        problems = build(args.solutions, args.exercises, check=args.check)
    except BuildError as error:
        print(f"tplab build: error: {error}", file=sys.stderr)
        return 1
    if args.check:
        if problems:
            for problem in problems:
                print(problem, file=sys.stderr)
            print(f"tplab build: {shown(args.exercises)} is out of date with "
                  f"{shown(args.solutions)}: run `tplab build` (or `make build`) "
                  "and commit the result", file=sys.stderr)
            return 1
        print(f"{shown(args.exercises)} is up to date")
        return 0
    for problem in problems:
        verb = "removed" if problem.kind == "extra" else "wrote"
        print(f"{verb} {shown(problem.path)}")
    print(f"{shown(args.exercises)} is up to date ({len(problems)} file(s) changed now)")
    return 0

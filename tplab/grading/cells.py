"""The notebook conventions that lesson authors, the build and the grader share.

Exercises are written once, as working code in `solutions/`, and every other
artefact is derived from that one source. For the derivation to be mechanical,
authors mark their notebooks in a few fixed ways, and this module is the single
place those marks are spelled out:

* a *solution cell* is a code cell whose answer sits between `### BEGIN SOLUTION`
  and `### END SOLUTION` lines, with metadata `{"tplab": {"exercise": "<id>"}}`;
* a *check cell* is a code cell with metadata
  `{"tplab": {"check": "<id>", "points": <int>}}`; an exercise earns a check's
  points when that cell runs without raising.

It also holds the stub a learner sees in place of an answer (and how the grader
recognises it again), and the rule that gives every cell a stable id, so an
exercise cell and the solution cell it came from can always be paired up.
"""
from __future__ import annotations

import hashlib

import nbformat

from tplab.grading.report import rank_failure

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB_COMMENT = "# YOUR CODE HERE"
# The grader recognises an untouched exercise by this phrase in the error.
STUB_PHRASE = "write your code here"


class NotebookConventionError(ValueError):
    """A solution notebook breaks the conventions above (the message says where)."""


def read_notebook(path):
    """Read a notebook as stored, upgraded to nbformat 4, neither validated nor "repaired".

    `nbformat.read` also validates, and validating quietly gives each cell
    without an id a random one, which would make two builds differ. Callers
    assign ids (`ensure_cell_ids`) and validate where they need to.
    """
    with open(path, encoding="utf-8") as file:
        nb = nbformat.reader.reads(file.read())
    return nbformat.convert(nb, 4)


def tplab_metadata(cell) -> dict:
    """The cell's `tplab` metadata, or an empty dict when it has none."""
    meta = cell.get("metadata", {}).get("tplab", {})
    return meta if isinstance(meta, dict) else {}


def exercise_of(cell) -> str | None:
    """The exercise id a solution cell belongs to, if any."""
    return tplab_metadata(cell).get("exercise")


def check_of(cell) -> str | None:
    """The exercise id a check cell grades, if it is a (code) check cell."""
    if cell.get("cell_type") != "code":
        return None
    return tplab_metadata(cell).get("check")


def check_points(cell) -> int:
    """The points a check cell is worth; authors must give a non-negative int."""
    points = tplab_metadata(cell).get("points")
    if isinstance(points, bool) or not isinstance(points, int) or points < 0:
        raise NotebookConventionError(
            f"check cell for {check_of(cell)!r} needs integer 'points' >= 0, got {points!r}"
        )
    return points


def has_markers(source: str) -> bool:
    """Whether any line of `source` is a solution marker."""
    return any(line.strip() in (BEGIN, END) for line in source.splitlines())


def stub_message(exercise_id: str) -> str:
    """The text of the NotImplementedError an unanswered exercise raises."""
    return f"exercise {exercise_id}: {STUB_PHRASE}"


def stub_lines(indent: str, exercise_id: str) -> list[str]:
    """What replaces one solution block, at the block's own indentation."""
    return [
        f"{indent}{STUB_COMMENT}",
        f'{indent}raise NotImplementedError("{stub_message(exercise_id)}")',
    ]


def is_stub_error(ename: str, evalue: str) -> bool:
    """Whether an error is the stub's NotImplementedError (an exercise not attempted).

    The stub may also arrive wrapped, e.g. `WorkerError: rank 0 failed first:
    NotImplementedError: exercise ...` when it was raised on a rank started by
    `tplab.launch`. Then only the rank that failed first counts: a peer's stub
    listed after another rank's AssertionError, or a stub's source line in the
    remote traceback, does not make a wrong answer "not attempted".
    """
    failure = rank_failure(ename, evalue)
    if failure is not None:
        ename, evalue = failure[1], failure[2]
    return STUB_PHRASE in evalue and "NotImplementedError" in f"{ename} {evalue}"


def strip_solutions(source: str, exercise_id: str) -> str:
    """Replace every BEGIN..END SOLUTION block in `source` (markers included) by the stub.

    Raises NotebookConventionError on an END without BEGIN, a nested BEGIN, or a
    BEGIN that is never closed: any of those would leak part of the answer.
    """
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise NotebookConventionError(
                    f"line {number}: {BEGIN} inside another solution block")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(stub_lines(indent, exercise_id))
        elif marker == END:
            if not inside:
                raise NotebookConventionError(f"line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise NotebookConventionError(f"{BEGIN} is never closed by {END}")
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")


def stable_cell_id(notebook_stem: str, index: int) -> str:
    """A cell id that depends only on the notebook's name and the cell's position."""
    digest = hashlib.sha1(f"{notebook_stem}:{index}".encode()).hexdigest()
    return f"tplab-{digest[:12]}"


def ensure_cell_ids(nb, notebook_stem: str) -> None:
    """Give every cell of a solution notebook an id, in place, and raise on duplicates.

    Ids already present are kept (Jupyter writes them into nbformat 4.5 files), so
    an exercise cell shares its id with the solution cell it was built from. Cells
    without one (older files) get `stable_cell_id`, which the build and the grader
    compute alike. The notebook is marked nbformat 4.5, the version with ids.
    """
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        if not cell.get("id"):
            cell["id"] = stable_cell_id(notebook_stem, index)
        if cell["id"] in seen:
            raise NotebookConventionError(f"cell {index}: id {cell['id']!r} is used twice")
        seen.add(cell["id"])
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 5))

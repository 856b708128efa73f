"""Put the reference checks back into a learner's notebook before grading it.

A learner's notebook is theirs to edit, check cells included: while working,
weakening an `assert` or deleting a check is a fair way to explore. For
grading, though, the checks must be the course's own. So every check cell of
the solution notebook is copied back in, matched by cell id (the build gives an
exercise cell the id of the solution cell it came from):

* a check cell still present is replaced by the reference, whatever it holds now;
* a deleted check is re-inserted after the nearest earlier solution cell that
  the learner's notebook still has (so it runs after the code it checks);
* any other cell claiming to be a check (a copy, or metadata typed by hand)
  loses that claim, so it cannot earn points;
* each restored check first verifies that the `tplab.checks` functions it imports were not
  replaced by the learner's code (`untampered.py`).

The learner's notebook object is not changed; a merged copy is returned.
"""
from __future__ import annotations

import copy

from tplab.grading.cells import check_of, tplab_metadata
from tplab.grading.untampered import guard_line


def fresh_copy(cell, guard: bool = False):
    """A copy of a reference cell as it should run: no outputs, no execution count; with
    `guard`, first checking that the tplab.checks functions it imports are still the course's
    (`untampered.guard_line`)."""
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
        if guard:
            cell.source = guard_line(cell.source) + cell.source
    return cell


def position_of(cells, cell_id) -> int | None:
    """The index of the first cell with `cell_id`, or None."""
    if not cell_id:
        return None
    return next((i for i, cell in enumerate(cells) if cell.get("id") == cell_id), None)


def strip_check_claim(cell) -> None:
    """Remove `check`/`points` from a cell's tplab metadata, in place."""
    meta = tplab_metadata(cell)
    meta.pop("check", None)
    meta.pop("points", None)


def restore_checks(student_nb, solution_nb):
    """A copy of `student_nb` carrying exactly the check cells of `solution_nb`."""
    nb = copy.deepcopy(student_nb)
    cells = nb.cells
    restored = []  # the reference check cells now in `cells`
    anchor = -1  # index in `cells` of the last solution cell found there
    for reference in solution_nb.cells:
        index = position_of(cells, reference.get("id"))
        if check_of(reference) is not None:
            check = fresh_copy(reference, guard=True)
            if index is None:
                index = anchor + 1
                cells.insert(index, check)
            else:
                cells[index] = check
            restored.append(check)
        if index is not None:
            anchor = index
    for cell in cells:
        if not any(cell is check for check in restored):
            strip_check_claim(cell)
    return nb

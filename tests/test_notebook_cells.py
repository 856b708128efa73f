"""Every code cell of a lesson or a solution is short enough to read in one look.

A cell over 25 lines is a script pasted into a notebook: the learner scrolls instead of
reading, and whatever it does (a plot, a check's machinery, a training loop written for the
fourth time) belongs in `tplab`, called in one line. The exception is a cell where the lesson
*is* that code (a ring all-reduce written out, the answer to an exercise): it carries the
tag ``lesson-code``, so the exception is a decision someone made, visible in the notebook.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIMIT = 25
NOTEBOOKS = [*sorted((REPO / "notebooks").glob("*.ipynb")),
             *sorted((REPO / "solutions").glob("*.ipynb"))]


def long_cells(path: Path) -> list[str]:
    """'cell i: n lines' for each untagged code cell over the limit."""
    cells = json.loads(path.read_text())["cells"]
    out = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or "lesson-code" in cell.get("metadata", {}).get("tags", []):
            continue
        lines = "".join(cell["source"]).strip("\n").splitlines()
        if len(lines) > LIMIT:
            out.append(f"cell {i}: {len(lines)} lines, starting {lines[0][:60]!r}")
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_code_cells_fit_on_a_screen(path):
    found = long_cells(path)
    assert not found, (f"{path.name}: code cells over {LIMIT} lines (move the machinery into "
                       "tplab, split the cell, or tag it lesson-code if the lesson is that "
                       "code):\n" + "\n".join(found))


def test_the_rule_sees_a_long_cell_and_honours_the_tag(tmp_path):
    cell = {"cell_type": "code", "metadata": {}, "source": ["x = 1\n"] * (LIMIT + 1)}
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": [cell]}))
    assert long_cells(nb) == ["cell 0: 26 lines, starting 'x = 1'"]
    cell["metadata"]["tags"] = ["lesson-code"]
    nb.write_text(json.dumps({"cells": [cell]}))
    assert long_cells(nb) == []

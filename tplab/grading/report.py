"""Turn raw cell errors into one readable line, and grading results into a table.

A learner reads the report to know what to fix next, so each exercise gets a
single line: its status and the first line of the error that decided it, with
terminal colour codes removed. An `assert` without a message says nothing on
its own (`AssertionError`), so the failing source line is added from the
traceback.
"""
from __future__ import annotations

import re

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# IPython marks the failing line of a cell as "----> 3 assert x == y".
ARROW_LINE = re.compile(r"^-*> *(\d+) (.*)$")
MAX_MESSAGE = 160


def clean(text: str) -> str:
    """`text` without ANSI colour codes."""
    return ANSI.sub("", text or "")


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failing_line(traceback: list[str]) -> str | None:
    """The last source line IPython marked with an arrow in a traceback, e.g. `line 3: assert x == y`."""
    found = None
    for line in clean("\n".join(traceback)).splitlines():
        match = ARROW_LINE.match(line.strip())
        if match:
            found = f"line {match.group(1)}: {match.group(2).strip()}"
    return found


def error_message(ename: str, evalue: str, traceback: list[str]) -> str:
    """First line of an error, e.g. `AssertionError: ranks disagree`."""
    lines = clean(evalue).strip().splitlines()
    if lines:
        return shorten(f"{ename}: {lines[0]}")
    where = failing_line(traceback)
    return shorten(f"{ename} ({where})" if where else ename)


def format_table(result: dict) -> str:
    """A per-exercise table for one graded notebook, ending in `total: E/P`."""
    header = ("id", "points", "earned", "status", "message")
    rows = [header] + [
        (e["id"], str(e["points"]), str(e["earned"]), e["status"], e["message"]) for e in result["exercises"]
    ]
    widths = [max(len(row[col]) for row in rows) for col in range(4)]
    lines = [f"{result['notebook']}"]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]),
                 row[3].ljust(widths[3]), row[4]]
        lines.append("  ".join(cells).rstrip())
    lines.append(f"total: {result['earned']}/{result['points']}")
    return "\n".join(lines)

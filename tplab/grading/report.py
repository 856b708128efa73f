"""Turn raw cell errors into a readable message, and grading results into a table.

A learner reads the report to know what to fix next, so each exercise gets its
status and the message of the error that decided it, with terminal colour codes
removed. What a message keeps:

* an assertion's whole message (a check's author puts what was expected, what
  came, and what to do in it, often in that order, so its end matters most);
* of any other error, its first paragraph (the lines before a blank line: a
  launch error's traceback or stack dump comes after one);
* an error raised inside a rank started by `tplab.launch` arrives wrapped in a
  `WorkerError` ("rank 1 failed first: AssertionError: ...", the peers' echoes,
  the remote traceback); it is reported as the rank's own error, e.g.
  `AssertionError on rank 1: ...`, by the rules above;
* an `assert` without a message says nothing on its own (`AssertionError`), so
  the failing source line is added from the traceback.

`--json` gets the whole message (capped at `MESSAGE_LIMIT` characters, a guard
against a message the size of a tensor dump); the table wraps it to the terminal
and shows at most `TABLE_LIMIT` characters, cutting the middle so the start
(what is wrong) and the end (what was expected, what to do) both stay.
"""
from __future__ import annotations

import re
import shutil
import textwrap

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# IPython marks the failing line of a cell as "----> 3 assert x == y".
ARROW_LINE = re.compile(r"^-*> *(\d+) (.*)$")
# How tplab.ranks.errors.WorkerError.from_failures starts, and where its traceback begins.
RANK_FAILED = re.compile(r"rank (\d+) failed first: ([A-Za-z_][\w.]*)(?::[ \t]?(.*))?\Z", re.DOTALL)
ALSO_FAILED = re.compile(r"^\s*\(rank \d+ then failed too: .*\)\s*$")
TRACEBACK_MARK = "\n--- traceback from rank "
# A frame of a plain Python traceback: `  File "x.py", line 9, in fn` followed by its source line.
FRAME = re.compile(r'^\s*File "[^"]*", line (\d+), in (\S+)\s*$')
MESSAGE_LIMIT = 10_000  # characters kept in a result (and in --json)
TABLE_LIMIT = 600  # characters of a message shown in the table
TABLE_WIDTH = 100  # columns when the terminal's width is unknown


def clean(text: str) -> str:
    """`text` without ANSI colour codes."""
    return ANSI.sub("", text or "")


def cut_middle(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and (longer) end around a marker."""
    if len(text) <= limit:
        return text
    marker = " … ({} characters cut) … "
    room = max(limit - len(marker.format(len(text))), 2)
    head = room // 3
    tail = room - head
    return (text[:head].rstrip() + marker.format(len(text) - head - tail)
            + text[len(text) - tail:].lstrip())


def _tidy(text: str) -> str:
    """Colour codes removed, trailing spaces and blank lines at either end dropped."""
    return "\n".join(line.rstrip() for line in clean(text).strip("\n").splitlines()).strip()


def _first_paragraph(text: str) -> str:
    return re.split(r"\n[ \t]*\n", text, maxsplit=1)[0]


def failing_line(traceback: list[str]) -> str | None:
    """The last source line IPython marked with an arrow in a traceback.

    For example `line 3: assert x == y`.
    """
    found = None
    for line in clean("\n".join(traceback)).splitlines():
        match = ARROW_LINE.match(line.strip())
        if match:
            found = f"line {match.group(1)}: {match.group(2).strip()}"
    return found


def _failing_frame(traceback_text: str) -> str | None:
    """The innermost frame of a plain Python traceback, e.g. `line 9 in check: assert ok`."""
    lines = traceback_text.splitlines()
    found = None
    for i, line in enumerate(lines):
        match = FRAME.match(line)
        if match:
            following = lines[i + 1] if i + 1 < len(lines) else ""
            is_source = following[:1].isspace() and not FRAME.match(following)
            source = following.strip() if is_source else ""
            found = f"line {match.group(1)} in {match.group(2)}" + (f": {source}" if source else "")
    return found


def rank_failure(ename: str, evalue: str) -> tuple[int, str, str, str] | None:
    """For a WorkerError from `tplab.launch` that names the rank that failed first:
    (rank, its exception's type name, its whole message, its traceback); None for anything else."""
    if ename != "WorkerError":
        return None
    text = clean(evalue).strip("\n")
    start = RANK_FAILED.match(text)
    if not start:
        return None
    head, _, remote = text.partition(f"{TRACEBACK_MARK}{start.group(1)} ---")
    match = RANK_FAILED.match(head)
    rank, kind, lines = int(match.group(1)), match.group(2), (match.group(3) or "").splitlines()
    while lines and (ALSO_FAILED.match(lines[-1]) or not lines[-1].strip()):
        lines.pop()  # the peers' echoes, listed after the root cause
    return rank, kind, "\n".join(lines).strip(), remote


def rank_assertion(ename: str, evalue: str) -> bool:
    """Whether an error is a WorkerError whose root cause is an AssertionError raised in a rank."""
    failure = rank_failure(ename, evalue)
    return failure is not None and failure[1] == "AssertionError"


def error_message(ename: str, evalue: str, traceback: list[str]) -> str:
    """What went wrong, e.g. `AssertionError: ranks disagree` (see the module docstring)."""
    failure = rank_failure(ename, evalue)
    if failure is not None:  # reported as the rank's own exception, without the launch's wrapping
        rank, kind, message, remote = failure
        name, text, where = f"{kind} on rank {rank}", _tidy(message), _failing_frame(remote)
    else:
        kind, name, text, where = ename, ename, _tidy(evalue), failing_line(traceback)
    if kind != "AssertionError":
        text = _first_paragraph(text)
    if text:
        return cut_middle(f"{name}: {text}", MESSAGE_LIMIT)
    return f"{name} ({where})" if where else name


def wrap_message(message: str, width: int, limit: int = TABLE_LIMIT) -> list[str]:
    """A message as table lines of at most `width` characters, `limit` characters in all at most."""
    lines = [" ".join(line.split()) for line in message.splitlines()]
    text = cut_middle("\n".join(line for line in lines if line), limit)
    wrapped = []
    for line in text.splitlines():
        wrapped += textwrap.wrap(line, max(width, 20), break_on_hyphens=False) or [""]
    return wrapped


def format_table(result: dict, width: int | None = None) -> str:
    """A per-exercise table for one graded notebook, ending in `total: E/P`.

    A long message wraps under the message column, to `width` columns (default:
    the terminal's, else TABLE_WIDTH).
    """
    if width is None:
        width = shutil.get_terminal_size((TABLE_WIDTH, 24)).columns
    header = ("id", "points", "earned", "status", "message")
    rows = [header] + [
        (e["id"], str(e["points"]), str(e["earned"]), e["status"], e["message"])
        for e in result["exercises"]
    ]
    widths = [max(len(row[col]) for row in rows) for col in range(4)]
    indent = sum(widths) + 2 * 4
    lines = [f"{result['notebook']}"]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]),
                 row[2].rjust(widths[2]), row[3].ljust(widths[3])]
        message = wrap_message(row[4], max(width - indent, 40)) or [""]
        lines.append("  ".join(cells + [message[0]]).rstrip())
        lines += [" " * indent + line for line in message[1:]]
    lines.append(f"total: {result['earned']}/{result['points']}")
    return "\n".join(lines)

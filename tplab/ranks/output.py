"""A rank's output: the two files it writes, how the launcher reads them back, and the stack
dump a stuck rank leaves in its stderr.

Why files: a rank's stdout and stderr (C code's too, torch's warnings, a segfault's stack) go
to files in the launch's temporary folder, not to the notebook, so the launcher can print them
in rank order once the ranks are done (`replay`): a cell's output is the same on every run.
The same stderr file carries the faulthandler dump a stuck rank writes when the launcher sends
it SIGUSR1 at the deadline; `stack_dump` finds the main thread's stack in it for the timeout
report, and `replay` leaves it out. The child writes (`redirect_output`, in `child.py`), the
launcher reads; this module is the format both agree on.
"""
from __future__ import annotations

import faulthandler
import io
import os
import re
import sys
from pathlib import Path

# Frames from this file are the rank's own machinery, below the launched function.
_CHILD_FILE = str(Path(__file__).with_name("child.py"))


def _paths(tmp: str, rank: int) -> tuple[Path, Path]:
    return Path(tmp) / f"rank{rank}.out", Path(tmp) / f"rank{rank}.err"


def redirect_output(tmp: str, rank: int) -> None:
    """In the rank: point fds 1 and 2 (C code's output too) and sys.stdout/err at its files."""
    for fd, path in zip((1, 2), _paths(tmp, rank)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    faulthandler.enable(file=sys.stderr)  # a segfault leaves a stack behind


def started(tmp: str, rank: int) -> bool:
    """Whether `rank` got as far as redirecting its output (its files exist)."""
    return _paths(tmp, rank)[1].exists()


def read_output(tmp: str, rank: int) -> tuple[str, str]:
    """(stdout, stderr) that `rank` wrote; empty if it never got that far."""
    texts = []
    for path in _paths(tmp, rank):
        try:
            texts.append(path.read_text(errors="replace"))
        except FileNotFoundError:
            texts.append("")
    return texts[0], texts[1]


def replay(outputs: list[tuple[str, str]]) -> None:
    """Print each rank's stdout (then stderr) here, in rank order, so notebook output is
    deterministic."""
    for rank, (out, _err) in enumerate(outputs):
        for line in out.splitlines():
            print(f"[rank {rank}] {line}")
    for rank, (_out, err) in enumerate(outputs):
        for line in strip_stack_dump(err).splitlines():
            print(f"[rank {rank}] {line}", file=sys.stderr)
    sys.stdout.flush()


_THREAD_HEADER = re.compile(r"^(?:Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\):$"
                            r"|^Stack \(most recent call first\):$", re.MULTILINE)


def _dump_start(err: str) -> int:
    """Where faulthandler's dump begins in a rank's stderr, or -1."""
    found = _THREAD_HEADER.search(err)
    return found.start() if found else -1


def strip_stack_dump(err: str) -> str:
    """stderr without a faulthandler dump (that goes into the timeout error instead)."""
    cut = _dump_start(err)
    return err if cut < 0 else err[:cut]


def stack_dump(err: str) -> str:
    """The main thread's stack from the faulthandler dump a stuck rank wrote on SIGUSR1, if any.

    faulthandler lists threads newest first, so the main thread (where `fn` runs) is the last
    block; it is cut where the rank's own frames (child.py's) begin, below the launched function.
    """
    headers = list(_THREAD_HEADER.finditer(err))
    if not headers:
        return ""
    lines = err[headers[-1].start():].splitlines()
    inner = [i for i, line in enumerate(lines) if _CHILD_FILE in line]
    return "\n".join(lines[:inner[0]] if inner else lines)

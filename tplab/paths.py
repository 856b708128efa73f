"""Where the course lives on disk, found from the package so that no command and no lesson
depends on the working directory."""
import shlex
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
REPO = PACKAGE.parent
NOTEBOOKS = REPO / "notebooks"
SOLUTIONS = REPO / "solutions"
EXERCISES = REPO / "exercises"
# the learner's copies of the exercises (`tplab lab` makes them; git ignores it)
MYWORK = REPO / "mywork"
BENCH = REPO / "bench"  # the benchmarks: lessons run them by this path
BENCH_RESULTS = BENCH / "results"  # their saved figures (JSON), which lessons read


def pip_command() -> str:
    """How to run pip for this Python, for a fix-it message: `.venv/bin/pip` in the course's
    own environment (the README's spelling), else this interpreter's `-m pip`."""
    if Path(sys.prefix).resolve() == (REPO / ".venv").resolve():
        return ".venv/bin/pip"
    return f"{shlex.quote(sys.executable)} -m pip"

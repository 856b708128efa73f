"""Where the course lives on disk, found from the package so that no command and no lesson
depends on the working directory."""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
REPO = PACKAGE.parent
SOLUTIONS = REPO / "solutions"
EXERCISES = REPO / "exercises"
# the learner's copies of the exercises (`tplab lab` makes them; git ignores it)
MYWORK = REPO / "mywork"
SCRIPTS = REPO / "scripts"  # scripts the lessons show and run (hello_ranks.py)
BENCH = REPO / "bench"  # the benchmarks: lessons run them by this path
BENCH_RESULTS = BENCH / "results"  # their saved figures (JSON), which lessons read


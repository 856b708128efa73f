"""Where the course lives on disk, found from the package so no command depends on the working directory."""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
REPO = PACKAGE.parent
NOTEBOOKS = REPO / "notebooks"
SOLUTIONS = REPO / "solutions"
EXERCISES = REPO / "exercises"

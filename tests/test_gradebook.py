"""`tplab grade ... --csv`: a class graded at once, a row per notebook, a bad one costs its row."""
from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

from test_grade import EXERCISE, SOLUTIONS, answered, read, save

from tplab import cli
from tplab.grading.gradebook import Graded, grade_many, gradebook_rows, who_of


def class_of_five(root: Path) -> dict[str, Path]:
    """submissions/<who>/01_demo.ipynb: good, crashing, hanging, untouched, and not a notebook."""
    crash = answered(**{"mean-solution": "import os\nos._exit(1)"})
    hang = answered(**{"mean-solution": "import time\ntime.sleep(600)"})
    paths = {
        "alice": save(answered(), root / "alice" / "01_demo.ipynb"),
        "bob": save(crash, root / "bob" / "01_demo.ipynb"),
        "carol": save(hang, root / "carol" / "01_demo.ipynb"),
        "dave": save(read(EXERCISE), root / "dave" / "01_demo.ipynb"),
    }
    paths["eve"] = root / "eve" / "01_demo.ipynb"
    paths["eve"].parent.mkdir()
    paths["eve"].write_text("{ not a notebook")
    return paths


def test_a_class_graded_at_once_into_csv_rows(tmp_path, capsys):
    paths = class_of_five(tmp_path / "submissions")
    out = tmp_path / "gradebook.csv"
    started = time.monotonic()
    code = cli.main(["grade", *map(str, paths.values()), "--solutions", str(SOLUTIONS),
                     "--timeout", "2", "--jobs", "4", "--csv", str(out)])
    took = time.monotonic() - started
    assert code == 1, "one notebook could not be graded: the exit code must say so"
    # one at a time this is about 5 kernels + a 2 s hang; at once it must stay well under a minute
    assert took < 40, f"grading 5 notebooks took {took:.0f} s"

    with open(out, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        header, rows = reader.fieldnames, {row["who"]: row for row in reader}
    assert header == ["who", "notebook", "square", "mean", "scale", "safe_div",
                      "total", "points", "status", "details"]
    assert list(rows) == ["alice", "bob", "carol", "dave", "eve"]  # the order given
    points = {who: [rows[who][c] for c in ("square", "mean", "scale", "safe_div", "total")]
              for who in rows}
    assert points == {"alice": ["3", "3", "2", "2", "10"], "bob": ["3", "0", "2", "2", "7"],
                      "carol": ["3", "0", "2", "2", "7"], "dave": ["0", "0", "0", "0", "0"],
                      "eve": ["", "", "", "", "0"]}
    assert [rows[w]["status"] for w in rows] == ["graded"] * 4 + ["error"]
    assert rows["alice"]["details"] == "" and rows["alice"]["points"] == "10"
    assert rows["bob"]["details"].startswith("mean: error (the kernel died")
    assert rows["carol"]["details"].startswith("mean: timeout (ran past the 2 s cell limit")
    assert rows["dave"]["details"].count("not attempted") == 4
    assert "not a readable Jupyter notebook" in rows["eve"]["details"]
    assert rows["eve"]["points"] == ""
    printed = capsys.readouterr()
    assert printed.out.count("total: ") == 4 and "all notebooks: 24/40" in printed.out
    assert printed.err.count("tplab grade: error:") == 1


def test_notebooks_run_jobs_at_a_time_and_a_grader_failure_stays_in_its_row():
    running, most, lock = [0], [0], threading.Lock()

    def grade_one(path: Path) -> dict:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        if path.stem == "broken":
            raise KeyError("exercises")
        return {"notebook": str(path), "exercises": [], "earned": 0, "points": 0}

    names = [Path(f"s/{n}.ipynb") for n in ("a", "broken", "c", "d", "e", "f")]
    graded = list(grade_many(names, grade_one, jobs=3))
    assert most[0] == 3, f"{most[0]} notebooks graded at once, expected 3"
    assert [g.path for g in graded] == names
    assert graded[1].result is None and graded[1].error == (
        "the grader failed: KeyError: 'exercises'")
    assert all(g.error is None for i, g in enumerate(graded) if i != 1)


def test_who_is_the_folder_or_else_the_file_stem():
    spread = [Path("sub/alice/03_tp.ipynb"), Path("sub/bob/03_tp.ipynb")]
    assert [who_of(p, spread) for p in spread] == ["alice", "bob"]
    together = [Path("sub/alice.ipynb"), Path("sub/bob.ipynb")]
    assert [who_of(p, together) for p in together] == ["alice", "bob"]
    # a notebook of a lesson without some exercise leaves that column empty
    rows = gradebook_rows([
        Graded(spread[0], result={"exercises": [{"id": "x", "earned": 2, "points": 2,
                                                  "status": "passed", "message": ""}],
                                  "earned": 2, "points": 2}),
        Graded(spread[1], result={"exercises": [{"id": "y", "earned": 0, "points": 1,
                                                  "status": "failed", "message": "wrong"}],
                                  "earned": 0, "points": 1})])
    assert [(r["x"], r["y"], r["details"]) for r in rows] == [(2, "", ""),
                                                              ("", 0, "y: failed (wrong)")]

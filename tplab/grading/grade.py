"""Grade a learner's notebook: run it with the course's own checks, score each exercise.

Grading happens in four steps, each in its own small function:

1. read the learner's notebook and find its solution (`tplab.solution` in the
   notebook's metadata, written by `tplab build`, else the same file name in
   `solutions/`);
2. copy the reference check cells back in (`tplab.grading.restore`), so editing
   or deleting a check changes nothing;
3. execute the result in a fresh kernel, in a separate worker process
   (`tplab.grading.worker`) under an overall deadline, so no learner code can
   hang or crash the grader;
4. score: an exercise earns a check's points when that check cell ran without
   error, and its status says what went wrong first: "failed" when a check's
   assertion caught a wrong answer (in the check cell itself, or inside a rank
   the check started with `tplab.launch`), "error" when the learner's code
   raised, "not attempted" for an untouched stub, "timeout"; an exercise whose
   cell uses the checks' own modules earns nothing (`tplab.grading.source_rules`).

The learner's file is only read, never written. Given several notebooks, it
grades `--jobs` of them at once (default: one per core), each in its own worker,
and `--csv FILE` writes a teacher's gradebook, one row per notebook
(`tplab.grading.gradebook`).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tplab import paths
from tplab.grading.cells import (
    NotebookConventionError,
    check_of,
    check_points,
    ensure_cell_ids,
    exercise_of,
    is_stub_error,
    read_notebook,
)
from tplab.grading.gradebook import grade_many, write_gradebook
from tplab.grading.report import clean, error_message, format_table, rank_assertion
from tplab.grading.restore import restore_checks
from tplab.grading.source_rules import refuse, refused_cells

DEFAULT_TIMEOUT = 120  # seconds per cell
DEFAULT_GRACE = 10  # seconds a timed-out cell gets to honour the interrupt
STARTUP_ALLOWANCE = 60  # seconds, in the overall deadline, for starting kernels
# Run by path, not `-m tplab...`: the worker needs nbclient, not tplab (nor torch).
# `-P` (Python 3.11+) keeps the worker's folder off sys.path.
WORKER = [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []),
          str(Path(__file__).with_name("worker.py"))]


class GradingError(Exception):
    """The notebook could not be graded at all (a low score is not an error)."""


def load_notebook(path: Path):
    """Read a notebook, or raise GradingError saying what is wrong with the file."""
    if not path.exists():
        raise GradingError(f"{path}: no such file; check the path to the notebook")
    if not path.is_file():
        raise GradingError(f"{path} is a directory, not a notebook; give the .ipynb file inside it")
    try:
        # Not validated: a notebook that breaks the schema in some small way can still be graded.
        nb = read_notebook(path)
        if not isinstance(nb.get("cells"), list) or not all(isinstance(c, dict) for c in nb.cells):
            raise ValueError("it has no list of cells")
    except Exception as error:  # nbformat raises several types for bad files
        text = clean(str(error)).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        raise GradingError(
            f"{path} is not a readable Jupyter notebook ({reason[:120]}); "
            "open and save it in Jupyter, or start again from a fresh copy of the exercise"
        ) from None
    return nb


def find_solution(path: Path, nb, solutions_dir: Path) -> Path:
    """The solution notebook for `nb`: named in its metadata, else the same file name."""
    candidates = []
    meta = nb.metadata.get("tplab")
    stem = meta.get("solution") if isinstance(meta, dict) else None
    if isinstance(stem, str) and stem:
        candidates.append(solutions_dir / f"{stem}.ipynb")
    candidates.append(solutions_dir / path.name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = " or ".join(str(c) for c in dict.fromkeys(candidates))
    raise GradingError(
        f"no solution notebook for {path}: looked for {looked}; "
        "grade a notebook made from exercises/ (keeping its file name), or pass --solutions DIR"
    )


def load_solution(path: Path):
    """Read a solution notebook and give its cells the ids the build gave them."""
    nb = load_notebook(path)
    try:
        ensure_cell_ids(nb, path.stem)
        for cell in nb.cells:
            if check_of(cell) is not None:
                check_points(cell)
    except NotebookConventionError as error:
        raise GradingError(f"{path}: {error}") from None
    return nb


def exercise_layout(nb) -> dict[str, dict]:
    """A merged notebook's exercise id -> {"checks": [(i, points)], "work": [i]}, in check order."""
    layout: dict[str, dict] = {}
    for index, cell in enumerate(nb.cells):
        exercise_id = check_of(cell)
        if exercise_id is not None:
            entry = layout.setdefault(str(exercise_id), {"checks": [], "work": []})
            entry["checks"].append((index, check_points(cell)))
    for index, cell in enumerate(nb.cells):
        exercise_id = exercise_of(cell)
        if exercise_id is not None and str(exercise_id) in layout and check_of(cell) is None:
            layout[str(exercise_id)]["work"].append(index)
    return layout


def worker_env() -> dict:
    """The environment for the worker and its kernel: this one, with this tplab importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(paths.REPO), env.get("PYTHONPATH")) if p)
    # silence a debugger warning at kernel start
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill the worker, its kernel (in a session of its own) and anything that started."""
    try:
        import psutil

        family = psutil.Process(proc.pid).children(recursive=True)
    except Exception:  # psutil missing, or the worker already gone
        family = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    for process in family:
        try:
            process.kill()
        except Exception:
            pass
    proc.wait()


def read_records(path: Path) -> dict[int, dict]:
    """{cell index: record} from the worker's JSON lines (a line cut short by a kill is dropped)."""
    records = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[record["index"]] = record
    return records


def run_in_worker(nb, cwd: Path, timeout: float, grace: float,
                  wall_timeout: float) -> tuple[dict, bool]:
    """Run `nb` in a worker; return ({cell index: record}, whether the deadline stopped it)."""
    with tempfile.TemporaryDirectory(prefix="tplab-grade-") as tmp:
        merged, out = Path(tmp, "merged.ipynb"), Path(tmp, "cells.jsonl")
        log = Path(tmp, "worker.log")
        # written as is: nbformat.write would validate and log
        merged.write_text(json.dumps(nb), encoding="utf-8")
        command = [*WORKER, str(merged), "--cwd", str(cwd),
                   "--timeout", str(timeout), "--grace", str(grace), "--out", str(out)]
        stopped = False
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env=worker_env())
            try:
                proc.wait(timeout=wall_timeout)
            except subprocess.TimeoutExpired:
                stopped = True
            finally:
                if proc.poll() is None:
                    kill_tree(proc)
        records = read_records(out)
        if proc.returncode != 0 and not stopped:
            log_text = clean(log.read_text(encoding="utf-8", errors="replace"))
            tail = [line for line in log_text.splitlines() if line.strip()]
            last = tail[-1] if tail else f"exit code {proc.returncode}"
            raise GradingError(f"the grading worker failed ({last}); check that ipykernel is "
                               "installed in this environment (`tplab doctor`)")
    return records, stopped


def cell_problem(record: dict | None, is_check: bool, timeout: float) -> tuple[str, str] | None:
    """(status, message) for a cell that did not run cleanly; None if it did (or did not run)."""
    if record is None or record["outcome"] == "ok":
        return None
    outcome = record["outcome"]
    if outcome == "timeout":
        return "timeout", f"ran past the {timeout:g} s cell limit (interrupted)"
    if outcome == "killed":
        return "timeout", (f"ran past the {timeout:g} s cell limit and ignored the interrupt "
                           "(kernel restarted)")
    if outcome == "died":
        return "error", "the kernel died: a crash, os._exit or out of memory (kernel restarted)"
    message = error_message(record["ename"], record["evalue"], record["traceback"])
    if is_stub_error(record["ename"], record["evalue"]):
        return "not attempted", message
    if is_check and (record["ename"] == "AssertionError"
                     or rank_assertion(record["ename"], record["evalue"])):
        # a wrong answer, caught by a check here or inside a launched rank
        return "failed", message
    return "error", message


def score_exercise(exercise_id: str, entry: dict, records: dict, timeout: float,
                   not_run: tuple) -> dict:
    """The result for one exercise.

    A problem in its own code cells explains a failure before its checks do.
    """
    points = sum(p for _, p in entry["checks"])
    passed = [index for index, _ in entry["checks"]
              if records.get(index, {}).get("outcome") == "ok"]
    earned = sum(p for index, p in entry["checks"] if index in passed)
    result = {"id": exercise_id, "points": points, "earned": earned, "status": "passed",
              "message": ""}
    if len(passed) == len(entry["checks"]):
        return result
    problems = [cell_problem(records.get(i), False, timeout) for i in entry["work"]]
    problems += [cell_problem(records[i], True, timeout) if i in records else not_run
                 for i, _ in entry["checks"] if i not in passed]
    result["status"], result["message"] = next(p for p in problems if p is not None)
    return result


def grade_notebook(path, solutions_dir=None, timeout: float = DEFAULT_TIMEOUT,
                   wall_timeout: float | None = None, grace: float = DEFAULT_GRACE) -> dict:
    """Grade one notebook; return {"notebook", "exercises", "earned", "points"}.

    Each of "exercises" is {"id", "points", "earned", "status", "message"}.

    `timeout` bounds each cell; `wall_timeout` the whole run (default: enough for
    every code cell to use its full timeout and grace, plus kernel start-up).
    Raises GradingError when the notebook cannot be graded at all.
    """
    path = Path(path)
    student = load_notebook(path)
    solution = load_solution(find_solution(path, student, Path(solutions_dir or paths.SOLUTIONS)))
    merged = restore_checks(student, solution)
    layout = exercise_layout(merged)
    records, stopped = {}, False
    if layout:
        code_cells = sum(cell.cell_type == "code" for cell in merged.cells)
        if wall_timeout is None:
            wall_timeout = STARTUP_ALLOWANCE + code_cells * (timeout + grace)
        records, stopped = run_in_worker(merged, path.resolve().parent, timeout, grace,
                                         wall_timeout)
    not_run = (("timeout", f"not run: grading stopped at the {wall_timeout:g} s limit "
                           "for the whole notebook")
               if stopped else ("error", "not run"))
    exercises = [score_exercise(eid, entry, records, timeout, not_run)
                 for eid, entry in layout.items()]
    refuse(exercises, layout, refused_cells(merged, solution))
    return {"notebook": str(path), "exercises": exercises,
            "earned": sum(e["earned"] for e in exercises),
            "points": sum(e["points"] for e in exercises)}


def add_arguments(parser) -> None:
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK",
                        help="notebook(s) to grade")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write the results to FILE as JSON")
    parser.add_argument("--csv", type=Path, metavar="FILE",
                        help="also write a gradebook to FILE: one row per notebook (who, each "
                             "exercise's points, total, status)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="notebooks graded at once, each in its own worker "
                             "(default: one per core)")
    parser.add_argument("--solutions", type=Path, default=paths.SOLUTIONS, metavar="DIR",
                        help="where the solution notebooks are (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="time limit per cell (default: %(default)s)")
    parser.add_argument("--total-timeout", type=float, default=None, metavar="SECONDS",
                        help="time limit per notebook (default: every cell's limit added up)")


def run(args) -> int:
    def grade_one(path: Path) -> dict:
        return grade_notebook(path, args.solutions, timeout=args.timeout,
                              wall_timeout=args.total_timeout)

    graded, results = [], []
    for item in grade_many(args.notebooks, grade_one, jobs=args.jobs, expected=(GradingError,)):
        graded.append(item)
        if item.error is not None:
            print(f"tplab grade: error: {item.error}", file=sys.stderr)
            continue
        results.append(item.result)
        print(format_table(item.result) + "\n", flush=True)
    if len(results) > 1:
        earned, points = sum(r["earned"] for r in results), sum(r["points"] for r in results)
        print(f"all notebooks: {earned}/{points}")
    if args.json and results:
        payload = results[0] if len(args.notebooks) == 1 and results else results
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if args.csv:
        write_gradebook(args.csv, graded)
    return 1 if len(results) < len(graded) else 0

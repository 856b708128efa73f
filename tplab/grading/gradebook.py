"""The teacher's gradebook: a class's notebooks graded at once, one CSV row per notebook.

A teacher collects `submissions/<who>/NN_*.ipynb` and wants one spreadsheet:

    tplab grade submissions/*/03_*.ipynb --csv gradebook.csv

Each notebook is graded by `tplab.grading.grade.grade_notebook`, which already
runs it in a worker process of its own, under its own deadline. So nothing a
notebook does (loop forever, crash its kernel, exhaust memory) reaches another
one, and the pool here only has to wait on workers: threads are enough, and
`jobs` of them (default: one per core) keep that many workers busy. Whatever
stops a notebook from being graded at all (an unreadable file, no solution, the
grader itself failing) becomes that row's status and message, and the other
rows are graded as usual.

A row: who (the notebook's folder, e.g. `alice` for `submissions/alice/03_x.ipynb`;
the file's stem when every notebook sits in the same folder), the notebook,
the points earned on each exercise (one column per exercise id, empty where the
notebook has no such exercise), total, points (the most it could earn),
status ("graded", or "error" when it could not be graded) and details (each
exercise not passed, with its status and message, or why it was not graded).
"""
from __future__ import annotations

import csv
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from tplab.grading.report import cut_middle

DETAIL_LIMIT = 200  # characters of each exercise's message kept in the details column


@dataclass
class Graded:
    """One notebook's outcome: its result (as `grade_notebook` returns it), or why there is none."""

    path: Path
    result: dict | None = None
    error: str | None = None


def grade_one_safely(path: Path, grade_one: Callable[[Path], dict],
                     expected: tuple[type[BaseException], ...]) -> Graded:
    """`grade_one(path)` as a Graded: an error, expected or not, stays in this notebook's row."""
    try:
        return Graded(path, result=grade_one(path))
    except expected as error:
        return Graded(path, error=str(error))
    except Exception as error:  # a bug in the grader: still only this row
        return Graded(path, error=f"the grader failed: {type(error).__name__}: {error}")


def stop_workers() -> None:
    """Kill every grading worker this process started (each leads a session of its own)."""
    try:
        import psutil

        children = psutil.Process().children()
    except Exception:
        return
    for child in children:
        try:
            if os.getsid(child.pid) == child.pid:
                os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            pass


def grade_many(notebooks: Iterable[Path], grade_one: Callable[[Path], dict],
               jobs: int | None = None,
               expected: tuple[type[BaseException], ...] = ()) -> Iterator[Graded]:
    """Grade `notebooks` with `grade_one`, `jobs` at a time; yield a Graded each, in their order.

    `expected`: the exception types whose message alone says why a notebook could
    not be graded (GradingError); any other is reported with its type.
    Ctrl-C (or closing this generator early) kills the workers under way
    (`stop_workers`) and starts no more.
    """
    notebooks = [Path(n) for n in notebooks]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(notebooks) or 1))
    if jobs == 1:  # in this thread: nothing to wait for but the worker itself
        for path in notebooks:
            yield grade_one_safely(path, grade_one, expected)
        return
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="tplab-grade")
    try:
        yield from pool.map(lambda p: grade_one_safely(p, grade_one, expected), notebooks)
    except BaseException:  # Ctrl-C, or the caller stopped reading: no more results wanted
        pool.shutdown(wait=False, cancel_futures=True)
        stop_workers()
        raise
    finally:
        pool.shutdown(wait=True)


def who_of(path: Path, notebooks: list[Path]) -> str:
    """Whose notebook: its folder's name, or its stem when all notebooks share one folder."""
    folders = {p.resolve().parent for p in notebooks}
    if len(folders) == 1:
        return path.stem
    return path.resolve().parent.name


def exercise_columns(graded: list[Graded]) -> list[str]:
    """Every exercise id, in the order the notebooks first list them."""
    ids: dict[str, None] = {}
    for item in graded:
        for exercise in (item.result or {}).get("exercises", []):
            ids.setdefault(exercise["id"], None)
    return list(ids)


def details_of(item: Graded) -> str:
    """Why a row is short of full marks: each exercise not passed, or why it was not graded."""
    if item.result is None:
        return item.error or ""
    return "; ".join(
        f"{e['id']}: {e['status']}" + (f" ({cut_middle(e['message'], DETAIL_LIMIT)})"
                                       if e["message"] else "")
        for e in item.result["exercises"] if e["status"] != "passed")


def gradebook_rows(graded: list[Graded]) -> list[dict]:
    """One dict per notebook, keyed by the CSV's columns (see the module docstring)."""
    notebooks = [item.path for item in graded]
    columns = exercise_columns(graded)
    rows = []
    for item in graded:
        row = {"who": who_of(item.path, notebooks), "notebook": str(item.path)}
        earned = {e["id"]: e["earned"] for e in (item.result or {}).get("exercises", [])}
        row.update({eid: earned.get(eid, "") for eid in columns})
        result = item.result or {"earned": 0, "points": ""}
        row.update(total=result["earned"], points=result["points"],
                   status="graded" if item.result is not None else "error",
                   details=details_of(item))
        rows.append(row)
    return rows


def write_gradebook(path: Path, graded: list[Graded]) -> None:
    """Write the gradebook of `graded` to `path` as CSV (UTF-8, a header row first)."""
    rows = gradebook_rows(graded)
    fields = ["who", "notebook", *exercise_columns(graded), "total", "points", "status", "details"]
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)

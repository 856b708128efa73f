"""`pytest --nbval-lax mywork/NN_*.ipynb`: nbval runs a learner's notebook and grades it.

The course's brief has learners autograde with nbval. Plain nbval would run the
learner's own check cells (which they may have edited or deleted) and would say
"passed/failed" per cell, not per exercise. This pytest plugin, registered by
the `pytest11` entry point `tplab`, makes that route grade like `tplab grade`:

* the notebook nbval runs is the learner's with the reference check cells put
  back (`tplab.grading.restore`, the same merge `tplab grade` runs), so an
  edited or deleted check changes nothing;
* each cell's outcome is recorded as `tplab grade`'s worker records it, and the
  run ends with the same per-exercise table and total (`format_table`); an
  exercise whose cell uses `tplab.checks` earns nothing here too (`source_rules`).

When it acts, and why only then: with `--nbval-lax`, on a notebook that carries
tplab exercise metadata (the `tplab.solution` that `tplab build` writes, or a
check cell). Under `--nbval` (strict: stored outputs compared) it does nothing,
not even read a file: that is how `make test` re-runs the lessons and the
solutions, whose outputs must match as stored, and grading would only slow it.
A learner's notebook holds outputs of their own run, which strict comparison
would fail anyway; running one's own work is what `--nbval-lax` is for. Other
notebooks (no tplab metadata) are left to nbval as they are.

Where it hooks: it wraps `pytest_collect_file` and replaces nbval's collector for
such a notebook by a subclass (`GradedNotebook`) whose `collect` yields nbval's
own cell items, built from the merged notebook instead of the file. Kernel,
execution and reporting stay nbval's.

What differs from `tplab grade`: nbval runs one kernel, in this process's
session, and never restarts it, so a cell that kills the kernel (os._exit, a
crash) fails at once (`give_up_on_a_dead_kernel`) and so does every cell after
it. Each graded cell gets `tplab grade`'s limit (120 s) unless
`--nbval-cell-timeout` is given. `tplab grade` restarts the kernel and carries
on, in a separate process under an overall deadline: its grade is the one that
counts. The learner's file is only read. Without nbval installed the plugin does
nothing.
"""
from __future__ import annotations

import os
import shlex
import time
from collections import defaultdict
from pathlib import Path
from queue import Empty

import pytest

from tplab import paths
from tplab.grading.cells import check_of, read_notebook
from tplab.grading.grade import (
    DEFAULT_TIMEOUT,
    GradingError,
    exercise_layout,
    find_solution,
    load_notebook,
    load_solution,
    score_exercise,
)
from tplab.grading.report import format_table
from tplab.grading.restore import restore_checks
from tplab.grading.source_rules import refuse, refused_cells

try:  # nbval is a test-only dependency: without it, there is no --nbval-lax to act on
    from nbval.plugin import IPyNbCell, IPyNbFile, find_comment_markers, find_metadata_tags
except ImportError:  # pragma: no cover
    IPyNbFile = None

# The GradedNotebook collectors of this session, in collection order, for the summary
GRADED = pytest.StashKey[list]()
KERNEL_DIED = "KernelDied"


def pytest_addoption(parser):
    parser.getgroup("nbval").addoption(
        "--tplab-solutions", default=None, metavar="DIR",
        help="tplab: where the solution notebooks are, for grading under --nbval-lax; "
             "write it --tplab-solutions=DIR (default: the course's solutions/)")


def grading_wanted(config) -> bool:
    """Only with --nbval-lax, never under plain --nbval (see the module docstring)."""
    option = config.option
    return bool(getattr(option, "nbval_lax", False)) and not getattr(option, "nbval", False)


def is_exercise_notebook(path: Path) -> bool:
    """Whether the file carries tplab exercise metadata (read as JSON, nothing run)."""
    try:
        nb = read_notebook(path)
    except Exception:  # not a notebook nbformat can read: nbval will say so
        return False
    meta = nb.metadata.get("tplab")
    if isinstance(meta, dict) and meta.get("solution"):
        return True
    return any(isinstance(c, dict) and check_of(c) is not None for c in nb.get("cells", []))


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    collectors = yield
    if file_path.suffix != ".ipynb" or not grading_wanted(parent.config):
        return collectors
    if IPyNbFile is None or not any(type(c) is IPyNbFile for c in collectors):
        return collectors
    if not is_exercise_notebook(file_path):
        return collectors
    graded = GradedNotebook.from_parent(parent, path=file_path)
    parent.config.stash.setdefault(GRADED, []).append(graded)
    return [graded if type(c) is IPyNbFile else c for c in collectors]


if IPyNbFile is not None:
    class GradedNotebook(IPyNbFile):
        """nbval's notebook collector, running the learner's cells with the reference checks."""

        def collect(self):
            solutions = Path(self.config.option.tplab_solutions or paths.SOLUTIONS)
            try:
                student = load_notebook(self.path)
                solution = load_solution(find_solution(self.path, student, solutions))
            except GradingError as error:
                raise self.CollectError(f"tplab cannot grade this notebook: {error}") from None
            self.nb = restore_checks(student, solution)
            self.layout, self.records = exercise_layout(self.nb), {}
            self.refused = refused_cells(self.nb, solution)  # answers using tplab.checks
            code_cells = [(i, c) for i, c in enumerate(self.nb.cells) if c.cell_type == "code"]
            for number, (index, cell) in enumerate(code_cells):
                options = defaultdict(bool, find_metadata_tags(cell.metadata))
                options.update(find_comment_markers(cell.source))
                options["check"] = False  # the grade comes from the checks, not from outputs
                item = IPyNbCell.from_parent(self, name=f"Cell {number}", cell_num=number,
                                             cell=cell, options=options)
                item.tplab_index = index
                yield item

        def setup(self):
            super().setup()
            give_up_on_a_dead_kernel(self.kernel)

        def result(self) -> dict:
            """The notebook's result, as `tplab grade` gives it, from the cells that ran."""
            timeout = cell_timeout(self.config)
            exercises = [score_exercise(eid, entry, self.records, timeout, ("error", "not run"))
                         for eid, entry in self.layout.items()]
            refuse(exercises, self.layout, self.refused)
            here = self.config.invocation_params.dir
            shown = self.path.relative_to(here) if self.path.is_relative_to(here) else self.path
            return {"notebook": str(shown), "exercises": exercises,
                    "earned": sum(e["earned"] for e in exercises),
                    "points": sum(e["points"] for e in exercises)}


class KernelDied(RuntimeError):
    """The kernel running a graded cell exited (os._exit, a crash, out of memory)."""


def give_up_on_a_dead_kernel(kernel, poll: float = 1.0) -> None:
    """Make nbval's wait for a cell's reply end within `poll` s of its kernel dying.

    nbval waits for the reply for the whole cell limit, even from a kernel that is
    gone: a learner would wait minutes to learn nothing. The wait is made in
    `poll`-second slices; once the kernel is no longer alive it is stopped (as
    nbval stops one) and the cell fails with KernelDied; the cells after it fail
    at once, nbval saying the kernel is dead.
    """
    wait = kernel.await_reply

    def await_reply(msg_id, timeout=None):
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        while True:
            left = poll if deadline is None else min(poll, deadline - time.monotonic())
            try:
                return wait(msg_id, timeout=max(left, 0.01))
            except Empty:
                if not kernel.is_alive():
                    kernel.stop()
                    raise KernelDied("the kernel died while running this cell") from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    kernel.await_reply = await_reply


def cell_timeout(config) -> float:
    """Each graded cell's limit: `--nbval-cell-timeout` when given, else `tplab grade`'s."""
    given = [*config.invocation_params.args, *config.getini("addopts"),
             *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    if any(str(arg).startswith("--nbval-cell-timeout") for arg in given):
        return float(config.option.nbval_cell_timeout)
    return float(DEFAULT_TIMEOUT)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Run a graded cell under `cell_timeout` (nbval's own default is 2000 s)."""
    if not hasattr(item, "tplab_index"):
        return (yield)
    option = item.config.option
    saved, option.nbval_cell_timeout = option.nbval_cell_timeout, cell_timeout(item.config)
    try:
        return (yield)
    finally:
        option.nbval_cell_timeout = saved


def cell_record(item, excinfo) -> dict | None:
    """How a cell ended, in the worker's record format; None when it was skipped."""
    record = {"index": item.tplab_index, "outcome": "ok", "ename": "", "evalue": "",
              "traceback": []}
    if excinfo is None:
        return record
    if excinfo.errisinstance(pytest.skip.Exception):
        return None
    error = excinfo.value
    outputs = [o for o in (item.test_outputs or []) if o.get("output_type") == "error"]
    if outputs:  # the cell raised: its own exception (KeyboardInterrupt at the cell limit)
        timed_out = str(error).startswith("Timeout of")
        record.update(outcome="timeout" if timed_out else "error", ename=outputs[-1]["ename"],
                      evalue=outputs[-1]["evalue"], traceback=list(outputs[-1]["traceback"]))
    elif isinstance(error, KernelDied):
        record.update(outcome="error", ename=KERNEL_DIED, evalue=(
            "the kernel died here (a crash, os._exit, out of memory); nbval cannot restart it: "
            "fix this cell, or grade with `tplab grade`, which restarts the kernel and goes on"))
    elif str(error).startswith("Timeout of"):  # nbval stopped a kernel that ignored the interrupt
        record.update(outcome="error", ename="Timeout", evalue=(
            f"ran past the {cell_timeout(item.config):g} s cell limit and ignored the "
            "interrupt, so nbval stopped the kernel and cannot run the cells after it"))
    elif not item.parent.kernel or not item.parent.kernel.is_alive():
        record.update(outcome="error", ename=KERNEL_DIED,
                      evalue="not run: the kernel died in an earlier cell")
    else:
        record.update(outcome="error", ename=type(error).__name__, evalue=str(error))
    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "call" and hasattr(item, "tplab_index"):
        record = cell_record(item, call.excinfo)
        if record is not None:
            item.parent.records[item.tplab_index] = record
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    graded = [g for g in config.stash.get(GRADED, []) if getattr(g, "records", None)]
    if not graded:
        return
    terminalreporter.write_sep("=", "tplab grade (reference checks restored)")
    for notebook in graded:
        terminalreporter.write_line(format_table(notebook.result()) + "\n")

"""Run a notebook cell by cell in a fresh kernel, and write down how each cell ended.

This runs in its own process, started by `tplab.grading.grade`, which holds an
overall deadline over it: whatever the learner's code does (loop forever,
exhaust memory, kill its own interpreter), the grader survives and can still
report. The worker knows nothing about exercises or points; it only answers
"what happened in cell i?". It imports nothing from tplab, so the grader runs
it by file path (`python tplab/grading/worker.py ...`) and skips importing
torch just to start a kernel.

Each code cell gets `timeout` seconds. Past that the kernel is interrupted
(KeyboardInterrupt) and the next cell runs. A cell that ignores the interrupt
for `grace` more seconds has its kernel killed. When a kernel dies, a new one
starts, re-runs the cells before the culprit (skipping any that timed out or
killed a kernel) to rebuild their state, and carries on: one broken exercise
costs only that exercise. No output is kept, and what a cell may print is
capped inside the kernel (`OUTPUT_LIMIT`), so printing in a loop fills no memory.

Output: one JSON object per executed code cell, one per line, in `--out`:
`{"index", "outcome", "ename", "evalue", "traceback", "seconds"}`, with
outcome one of "ok", "error", "timeout" (interrupted), "killed" (ignored the
interrupt), "died" (the kernel exited or crashed on its own).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

# nbformat validates with jsonschema, which compiles a URI grammar at import
# when the optional rfc3987-syntax package is present (about 2 s on a small
# machine). No notebook field needs it; going without keeps each grading fast.
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import DeadKernelError  # noqa: E402
from traitlets import default  # noqa: E402

# Outcomes after which a kernel is gone and must be replaced.
KERNEL_LOST = ("killed", "died")
# Characters of stdout and of stderr each cell may print; the rest is dropped
# in the kernel. Grading keeps no output, and a cell printing in a loop would
# otherwise fill memory (the kernel's history of outputs, and the messages
# queued for the worker) until its timeout.
OUTPUT_LIMIT = 1_000_000
# Run silently in every kernel before the notebook's cells. Before each cell it
# wraps sys.stdout/sys.stderr's `write` (the method IPython itself wraps to
# record outputs), always around the unwrapped method, so wrappers never stack.
PREAMBLE = f"""
def _tplab_cap_output(limit):
    import sys

    def cap(*args):
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            write = getattr(stream.write, "_tplab_original", stream.write)
            left = [limit]

            def write_capped(text, *more, _write=write, _left=left, **options):
                if _left[0] > 0:
                    _write(text[: _left[0]], *more, **options)
                    _left[0] -= len(text)
                return len(text)

            write_capped._tplab_original = write
            stream.write = write_capped

    get_ipython().events.register("pre_run_cell", cap)

_tplab_cap_output({OUTPUT_LIMIT})
del _tplab_cap_output
"""


class CurrentEnvKernelSpecs(KernelSpecManager):
    """Every kernel name resolves to this interpreter.

    So grading uses the course's own environment.
    """

    def get_kernel_spec(self, kernel_name):
        import ipykernel.kernelspec

        return self.kernel_spec_class(
            resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
        )


class CurrentEnvKernelManager(AsyncKernelManager):
    @default("kernel_spec_manager")
    def _current_env_specs(self):
        return CurrentEnvKernelSpecs()


class ReplyOnlyClient(NotebookClient):
    """A NotebookClient that keeps no outputs and remembers each cell's execute reply.

    The reply (on the shell channel) says whether the cell raised, and what; it
    is never dropped, unlike output messages, which a busy kernel may shed.
    Keeping no outputs also saves the worker's memory.
    """

    def __init__(self, nb, **kwargs):
        super().__init__(nb, on_cell_executed=self._keep_reply, **kwargs)
        self.last_reply = None

    def _keep_reply(self, cell, cell_index, execute_reply):
        self.last_reply = execute_reply

    def output(self, outs, msg, display_id, cell_index):
        return None


def ran_nothing(exc: RuntimeError) -> bool:
    """Whether a kernel's start failed before it could run a cell: it died before answering
    kernel_info, or it did not answer within the start-up timeout (jupyter_client's words)."""
    return "before replying to kernel_info" in str(exc) or "didn't respond in" in str(exc)


class Kernel:
    """One fresh kernel for `nb`, started in `cwd`; `run(cell, index)` executes one cell."""

    def __init__(self, nb, cwd: str, timeout: float, grace: float):
        self.timeout = max(1, round(timeout))  # nbclient counts whole seconds
        self.grace = grace
        self.alive = True
        self.client = ReplyOnlyClient(
            nb,
            timeout=self.timeout,
            interrupt_on_timeout=True,
            allow_errors=True,
            record_timing=False,
            shutdown_kernel="immediate",
            kernel_manager_class=CurrentEnvKernelManager,
            resources={"metadata": {"path": cwd}},
        )

    def __enter__(self):
        self._start()
        # Not execute_cell: that would store the preamble as one of the notebook's cells.
        msg_id = self.client.kc.execute(PREAMBLE, silent=True, store_history=False)
        reply = (self.client.wait_for_reply(msg_id) or {}).get("content", {})
        if reply.get("status") != "ok":
            self._session.__exit__(None, None, None)
            raise RuntimeError("the grading preamble failed in the kernel: "
                               f"{reply.get('evalue', 'no reply')}")
        return self

    def _start(self, tries: int = 3) -> None:
        """Start the kernel; one that dies, or does not answer within the start-up timeout,
        before it answers kernel_info has run nothing of the notebook (on a busy machine two
        kernels starting at once can pick the same free port), so another is started in its
        place (nbclient has shut the first one down)."""
        for attempt in range(tries):
            self._session = self.client.setup_kernel()
            try:
                self._session.__enter__()
                return
            except RuntimeError as exc:
                if not ran_nothing(exc) or attempt == tries - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))

    def __exit__(self, *exc_info):
        return self._session.__exit__(*exc_info)

    def _kill(self, fired: threading.Event) -> None:
        """Kill the kernel's whole process group (the kernel and anything it started)."""
        fired.set()
        provisioner = self.client.km.provisioner
        try:
            os.killpg(provisioner.pgid or provisioner.pid, signal.SIGKILL)
        except (OSError, TypeError):
            pass

    def run(self, cell, index: int) -> dict | None:
        """Execute one cell; return how it ended, or None for cells that do not run."""
        if cell.cell_type != "code" or not cell.source.strip():
            return None
        fired = threading.Event()
        watchdog = threading.Timer(self.timeout + self.grace, self._kill, args=(fired,))
        watchdog.daemon = True
        start = time.monotonic()
        watchdog.start()
        self.client.last_reply = None
        try:
            self.client.execute_cell(cell, index)
        except DeadKernelError:
            self.alive = False
        finally:
            watchdog.cancel()
        seconds = time.monotonic() - start
        reply = (self.client.last_reply or {}).get("content", {})
        error = reply if reply.get("status") == "error" else None
        return describe(index, error, seconds, self.timeout,
                        killed=fired.is_set(), alive=self.alive)


def describe(index, error, seconds, timeout, killed, alive) -> dict:
    """The record for one cell: what happened, and the error it raised if any.

    The error is the content of the kernel's execute reply.
    """
    record = {"index": index, "outcome": "ok", "ename": "", "evalue": "", "traceback": [],
              "seconds": round(seconds, 3)}
    if error is not None:
        record.update(outcome="error", ename=error.get("ename", ""), evalue=error.get("evalue", ""),
                      traceback=list(error.get("traceback", [])))
        if record["ename"] == "KeyboardInterrupt" and seconds >= timeout:
            record["outcome"] = "timeout"
    if killed:
        record["outcome"] = "killed"
    elif not alive:
        record["outcome"] = "died"
    return record


def catch_up(kernel: Kernel, cells, upto: int, skip: set[int]) -> bool:
    """Re-run cells[:upto] in a fresh kernel to rebuild their state.

    Returns False if the kernel is lost again.

    Nothing is reported: these cells were graded on their first run. Cells that
    time out or kill the kernel are added to `skip`, so none can derail the
    catch-up twice.
    """
    for index in range(upto):
        if index in skip:
            continue
        record = kernel.run(cells[index], index)
        if record and record["outcome"] in ("timeout",) + KERNEL_LOST:
            skip.add(index)
        if not kernel.alive:
            return False
    return True


def run_notebook(nb, cwd: str, timeout: float, grace: float, report) -> None:
    """Execute every cell of `nb` once, calling `report(record)` after each code cell."""
    cells = nb.cells
    done = 0  # cells[:done] have run (and been reported) once
    skip: set[int] = set()  # cells never to run again: they timed out or lost a kernel
    while done < len(cells):
        with Kernel(nb, cwd, timeout, grace) as kernel:
            if not catch_up(kernel, cells, done, skip):
                continue
            while done < len(cells) and kernel.alive:
                index, done = done, done + 1
                record = kernel.run(cells[index], index)
                if record is None:
                    continue
                report(record)
                if record["outcome"] in ("timeout",) + KERNEL_LOST:
                    skip.add(index)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="worker.py", description=__doc__.split("\n")[0])
    parser.add_argument("notebook", help="the notebook to execute (it is not modified)")
    parser.add_argument("--cwd", required=True, help="the kernel's working directory")
    parser.add_argument("--timeout", type=float, required=True, help="seconds per cell")
    parser.add_argument("--grace", type=float, default=10.0,
                        help="seconds a timed-out cell gets to honour the interrupt "
                             "before its kernel is killed")
    parser.add_argument("--out", required=True,
                        help="file to append one JSON record per executed cell to")
    args = parser.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    with open(args.out, "a", encoding="utf-8") as out:
        def report(record):
            out.write(json.dumps(record) + "\n")
            out.flush()

        run_notebook(nb, os.path.abspath(args.cwd), args.timeout, args.grace, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

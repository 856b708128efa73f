"""Shared by the tests that end a launch at its deadline on purpose."""
from __future__ import annotations

import os
import tempfile
import time

import pytest

import tplab

# `make test` runs two pytest workers (pytest-xdist): each gets its own local Ray directory, and
# the notebooks' kernels inherit it, so a lesson's Ray and test_serve_ray's never meet
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TPLAB_RAY_TMP", os.path.join(
        tempfile.gettempdir(), f"tplab-ray-{os.environ['PYTEST_XDIST_WORKER']}"))


def _start_kernels_again_if_they_die_starting() -> None:
    """nbval starts one kernel per notebook and never retries: a kernel that dies before it
    answers kernel_info, or does not answer in time (both seen on two busy cores with four
    kernels starting at once; jupyter_client shuts a silent one down) would fail
    every cell of that notebook without running one. It ran nothing, so start another, as the
    grading worker does (tplab.grading.worker.Kernel._start)."""
    try:
        from nbval.kernel import RunningKernel
    except ImportError:
        return
    from tplab.grading.worker import ran_nothing
    original = RunningKernel.__init__

    def __init__(self, *args, **kwargs):
        for attempt in range(3):
            try:
                return original(self, *args, **kwargs)
            except RuntimeError as exc:
                if not ran_nothing(exc) or attempt == 2:
                    raise
                time.sleep(0.5 * (attempt + 1))

    RunningKernel.__init__ = __init__


_start_kernels_again_if_they_die_starting()


def _timed_out(fn, n, *args, timeout: float, **kwargs) -> tplab.WorkerError:
    """The WorkerError of a launch meant to hit its deadline, with the ranks inside `fn`.

    Late in a full run on two busy cores, ranks have been seen still inside
    init_process_group at a 5 s deadline (CI, stop 19): such a launch never reached `fn` and
    proves nothing, so it is tried once more with four times the time.
    """
    for deadline in (timeout, 4 * timeout):
        start = time.monotonic()
        with pytest.raises(tplab.WorkerError) as info:
            tplab.launch(fn, n, *args, timeout=deadline, **kwargs)
        # the deadline, then stack dumps and kills: bounded, never the function's own time
        assert time.monotonic() - start < deadline + 8, str(info.value)
        if not info.value.joining:
            break
    assert not info.value.joining, str(info.value)
    return info.value


@pytest.fixture
def timed_out():
    return _timed_out

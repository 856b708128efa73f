"""Shared by the tests that end a launch at its deadline on purpose."""
from __future__ import annotations

import time

import pytest

import tplab


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

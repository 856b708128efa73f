"""What a rank made with multiprocessing is cleaned up before the parent kills it.

A rank leaves by os._exit, or is killed as soon as the parent has its result, so nothing that
a normal exit would unlink is unlinked by itself. A named semaphore (a lock of a spawn or
forkserver context; torch.compile's worker pool makes one, which is how `tplab generate --fast
--compile` showed it) then stays registered with the resource tracker the rank shares with its
parent, and the parent's exit prints "There appear to be N leaked semaphore objects".
"""
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import multiprocessing as mp
    import tplab
    mp.get_context("spawn").Lock()  # the parent's resource tracker, shared with its ranks
    def work():
        globals()["kept"] = mp.get_context("spawn").Lock()  # alive until the rank is gone
        return "ok"
    print(tplab.launch(work, 2, timeout=60, start_method={method!r}))
""")


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_no_semaphore_leaks_past_a_launch(method):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    r = subprocess.run([sys.executable, "-c", SCRIPT.format(method=method)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "['ok', 'ok']" in r.stdout, r.stdout + r.stderr
    assert "leaked semaphore" not in r.stderr, r.stderr

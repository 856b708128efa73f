"""Open JupyterLab on the course: bound to 127.0.0.1 only, token authentication on, starting at
lesson 00.

The token is random (`secrets.token_hex(24)`) unless `--token` or `TPLAB_LAB_TOKEN` gives one.
It reaches Jupyter through the JUPYTER_TOKEN environment variable rather than the command
line, so other users of a shared machine cannot read it from the process list. Jupyter's
runtime files, workspaces, settings and log go to the user's cache (~/.cache/tplab/jupyter);
kernels' IPython profile too, unless IPYTHONDIR is set.

Before it starts, each `exercises/NN_*.ipynb` is copied to `mywork/` unless a copy is already
there (a copy is never overwritten). Jupyter runs as a child process whose log goes to a file;
the URL is printed only once `/api/status` answers with the token, so it is the last thing on
screen and it works when it appears. The virtual environment's `bin` directory comes first on
the server's PATH, hence on its kernels' and terminals' (`!tplab grade ...` in a cell,
`tplab grade ...` in a JupyterLab terminal); terminals are plain interactive shells, not login
shells, which would reset PATH from /etc/profile. The Jupyter news prompt is switched off
through a default-settings override in a config directory of our own (JUPYTER_CONFIG_PATH).
What is prepared before Jupyter starts is in `lab_setup.py`; starting, waiting and stopping here.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tplab.install import pip_command
from tplab.lab_setup import (
    HOST,
    START_NOTEBOOK,
    build_command,
    copy_exercises,
    log_path,
    mywork_dir,
)
from tplab.paths import EXERCISES, REPO

SLOW_START_S = 60  # say so when Jupyter takes longer than this to answer


def add_arguments(parser) -> None:
    parser.add_argument("--port", type=int, default=8888,
                        help="port on 127.0.0.1 (default 8888; the next free one if busy; "
                             "0 = any free port)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--token", default=None,
                        help="token to require (default: $TPLAB_LAB_TOKEN, else a random one)")


def server_port(runtime_dir: str, pid: int) -> int | None:
    """The port the Jupyter server with process id `pid` serves on, from its runtime file, if
    written yet."""
    try:
        with open(os.path.join(runtime_dir, f"jpserver-{pid}.json")) as f:
            return int(json.load(f)["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def answers(port: int, token: str, timeout: float = 2.0) -> bool:
    """Whether a Jupyter server on 127.0.0.1:`port` answers /api/status for `token`."""
    req = urllib.request.Request(f"http://{HOST}:{port}/api/status",
                                 headers={"Authorization": f"token {token}"})
    # no http_proxy: the token stays here
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(req, timeout=timeout) as r:
            return r.status == 200 and "started" in json.loads(r.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the server gets SIGTERM if `tplab lab` itself is killed (it runs in its own
    session)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _banner(url: str, port: int, log: Path, seconds: float, copied: list[Path],
            mywork: Path) -> str:
    bar = "-" * min(len(url) + 4, 100)
    try:
        where = mywork.relative_to(REPO)
    except ValueError:
        where = mywork
    work = (f"Your exercises are in {where}/ ({len(copied)} copied from exercises/ just now; "
            "a copy there is never overwritten).\n" if copied else
            f"Your exercises are in {where}/ (a copy there is never overwritten).\n")
    return (f"\n{bar}\n"
            f"JupyterLab answered after {seconds:.1f} s. Served on {HOST} only, token required.\n"
            f"Jupyter's log: {log}\n"
            f"{work}"
            f"Stop with Ctrl-C. From another machine: `ssh -L {port}:127.0.0.1:{port} THIS-HOST`, "
            "then open the URL there.\n\n"
            f"tplab: the course is at\n\n    {url}\n{bar}\n")


def run(args) -> int:
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        print("tplab lab: JupyterLab is not installed here. Run `make lab` (it sets up .venv), "
              f"or `{pip_command()} install -e .`", file=sys.stderr)
        return 1
    argv, env, url = build_command(args)
    if not (REPO / START_NOTEBOOK).exists():
        print(f"tplab lab: note: {START_NOTEBOOK} is not there yet; JupyterLab opens on the "
              f"repository.", file=sys.stderr)
    mywork = mywork_dir(env)
    copied = copy_exercises(EXERCISES, mywork)
    parts = urllib.parse.urlsplit(url)
    port, token = parts.port, env["JUPYTER_TOKEN"]
    log = log_path(port, env)
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"tplab: starting JupyterLab on {HOST}:{port} (its log: {log}) ...", flush=True)

    proc: subprocess.Popen | None = None
    stopping = []

    def stop(signum, frame):  # Ctrl-C, kill, a closed terminal: Jupyter stops cleanly, kernels too
        stopping.append(signum)
        if proc is None or proc.poll() is not None:
            return  # not started yet (it is stopped as soon as it is) or already gone
        if len(stopping) == 1:
            proc.terminate()  # first: printing to a closed terminal can raise
            try:
                print("\ntplab: stopping JupyterLab and its kernels (Ctrl-C again to kill it now) "
                      "...", file=sys.stderr, flush=True)
            except OSError:
                pass
        else:
            proc.kill()

    handled = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))
               if s is not None]
    previous = {s: signal.signal(s, stop) for s in handled}
    try:
        with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            t0 = time.monotonic()
            # Its own session: the terminal's Ctrl-C reaches only us, and we stop Jupyter with
            # SIGTERM, its clean stop (a SIGINT without a terminal would skip the kernels'
            # shutdown).
            on_linux = sys.platform.startswith("linux")
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_die_with_parent if on_linux else None)
            if stopping:
                proc.terminate()
            runtime = env["JUPYTER_RUNTIME_DIR"]
            warned = False
            while proc.poll() is None and not stopping:
                # only the port Jupyter says it serves on: a guessed one might be someone else's
                actual = server_port(runtime, proc.pid)
                if actual is not None and answers(actual, token):
                    port, url = actual, parts._replace(netloc=f"{HOST}:{actual}").geturl()
                    print(_banner(url, port, log, time.monotonic() - t0, copied, mywork),
                          flush=True)
                    break
                if not warned and time.monotonic() - t0 > SLOW_START_S:
                    warned = True
                    print(f"tplab: JupyterLab has not answered after {SLOW_START_S} s; still "
                          f"waiting (see {log})", file=sys.stderr, flush=True)
                time.sleep(0.2)
            code = proc.wait()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if stopping:
        print(f"tplab: JupyterLab stopped (its log: {log}).", file=sys.stderr, flush=True)
        return 0
    print(f"tplab lab: JupyterLab exited with status {code}. The end of its log ({log}):\n"
          f"{_tail(log)}", file=sys.stderr, flush=True)
    return code or 1

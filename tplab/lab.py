"""Open JupyterLab on the course: bound to 127.0.0.1 only, token authentication on, starting at lesson 00.

The token is random (`secrets.token_hex(24)`) unless `--token` or `TPLAB_LAB_TOKEN` gives one.
It reaches Jupyter through the JUPYTER_TOKEN environment variable rather than the command
line, so other users of a shared machine cannot read it from the process list. Jupyter's
runtime files, workspaces and settings go to the user's cache (~/.cache/tplab/jupyter);
kernels' IPython profile too, unless IPYTHONDIR is set.
"""
from __future__ import annotations

import os
import secrets
import socket
import sys
import urllib.parse
from pathlib import Path

from tplab.paths import REPO

HOST = "127.0.0.1"
START_NOTEBOOK = "notebooks/00_devices_and_ranks.ipynb"
PORT_RETRIES = 50  # as Jupyter's own ServerApp.port_retries


def add_arguments(parser) -> None:
    parser.add_argument("--port", type=int, default=8888,
                        help="port on 127.0.0.1 (default 8888; the next free one if busy; 0 = any free port)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--token", default=None,
                        help="token to require (default: $TPLAB_LAB_TOKEN, else a random one)")


def cache_dir(environ=None) -> Path:
    env = os.environ if environ is None else environ
    home = env.get("HOME") or os.path.expanduser("~")
    base = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return Path(base) / "tplab" / "jupyter"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if os.name == "posix":  # as tornado binds: a port in TIME_WAIT counts as free
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def pick_port(port: int) -> int:
    """The first free port from `port` on (Jupyter's rule), so the URL we print is the one it serves."""
    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            return s.getsockname()[1]
    for p in range(port, min(port + PORT_RETRIES + 1, 65536)):
        if _port_free(p):
            return p
    raise SystemExit(f"tplab lab: ports {port}-{port + PORT_RETRIES} on {HOST} are all busy; "
                     f"choose another with --port (make lab LAB_PORT=...)")


def build_command(args, environ=None) -> tuple[list[str], dict[str, str], str]:
    """Return (argv, environment, URL) for JupyterLab; starts nothing."""
    env = dict(os.environ if environ is None else environ)
    token = args.token or env.get("TPLAB_LAB_TOKEN") or secrets.token_hex(24)
    port = pick_port(args.port)
    cache = cache_dir(env)
    runtime = cache / "runtime"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)  # kernel connection files hold keys
    os.chmod(runtime, 0o700)
    env["JUPYTER_TOKEN"] = token
    env.pop("JUPYTER_TOKEN_FILE", None)
    env.setdefault("JUPYTER_RUNTIME_DIR", str(runtime))
    env.setdefault("IPYTHONDIR", str(cache / "ipython"))
    env.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # kernels must not initialise CUDA before launch forks
    default_url = f"/lab/tree/{START_NOTEBOOK}"
    argv = [
        sys.executable, "-m", "jupyterlab",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        f"--ServerApp.port_retries={PORT_RETRIES}",
        f"--ServerApp.root_dir={REPO}",
        "--ServerApp.allow_remote_access=False",
        f"--ServerApp.open_browser={not args.no_browser}",
        f"--LabApp.default_url={default_url}",
        f"--LabApp.workspaces_dir={cache / 'workspaces'}",
        f"--LabApp.user_settings_dir={cache / 'user-settings'}",
        "--LabApp.news_url=None",  # no fetching of Jupyter news: works offline, asks nothing
        # jupyter-lsp would otherwise run `npm` at start to look for language servers (writing ~/.npm).
        "--LanguageServerManager.autodetect=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")  # containers often run as root; still loopback + token
    url = f"http://{HOST}:{port}{default_url}?token={token}"
    return argv, env, url


def run(args) -> int:
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        print("tplab lab: JupyterLab is not installed here. Run `make lab` (it sets up .venv), "
              f"or `{sys.executable} -m pip install -e .`", file=sys.stderr)
        return 1
    argv, env, url = build_command(args)
    if not (REPO / START_NOTEBOOK).exists():
        print(f"tplab lab: note: {START_NOTEBOOK} is not there yet; JupyterLab opens on the repository.",
              file=sys.stderr)
    port = urllib.parse.urlsplit(url).port
    bar = "-" * min(len(url) + 4, 100)
    print(f"\n{bar}\ntplab: the course is at\n\n    {url}\n\n"
          f"Served on {HOST} only, token required. Stop with Ctrl-C twice.\n"
          f"From another machine: `ssh -L {port}:127.0.0.1:{port} THIS-HOST`, then open the URL there.\n"
          f"{bar}\n", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)  # Jupyter takes over this process: signals reach it directly
    return 0  # pragma: no cover

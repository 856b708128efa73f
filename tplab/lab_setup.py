"""What `tplab lab` prepares before it starts Jupyter: the learner's copies of the exercises,
Jupyter's folders in the user's cache, a free port on 127.0.0.1, and the command line and
environment JupyterLab runs with (the token in JUPYTER_TOKEN, not on the command line; this
environment's `bin` first on PATH; the news prompt off). Nothing here starts a process:
`lab.py` starts Jupyter, waits for it to answer and stops it; its docstring is the whole story.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from tplab.paths import EXERCISES, MYWORK, REPO

HOST = "127.0.0.1"
START_NOTEBOOK = "notebooks/00_devices_and_ranks.ipynb"
PORT_RETRIES = 50  # as Jupyter's own ServerApp.port_retries
# Defaults for JupyterLab settings (a user's own settings still win): never ask about, fetch or
# show Jupyter news, never check for JupyterLab updates. news_url=None below already keeps the
# server from fetching; this keeps the page from asking ("Would you like to get notified ...").
SETTING_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def cache_dir(environ=None) -> Path:
    env = os.environ if environ is None else environ
    home = env.get("HOME") or os.path.expanduser("~")
    base = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return Path(base) / "tplab" / "jupyter"


def log_path(port: int, environ=None) -> Path:
    """Where Jupyter's own log goes while `tplab lab` serves on `port`."""
    return cache_dir(environ) / f"lab-{port}.log"


def mywork_dir(environ=None) -> Path:
    """The learner's copies of the exercises: mywork/ in the repository (TPLAB_MYWORK overrides
    it)."""
    env = os.environ if environ is None else environ
    return Path(env["TPLAB_MYWORK"]) if env.get("TPLAB_MYWORK") else MYWORK


def copy_exercises(src: Path = EXERCISES, dst: Path = MYWORK) -> list[Path]:
    """Copy each src/NN_*.ipynb to dst/ where dst has no file of that name yet; return the new
    copies.

    Never overwrites: a copy appears whole or not at all (written aside, then hard-linked into
    place, which fails if the name exists), so what the learner wrote is never replaced.
    """
    copied = []
    for nb in sorted(Path(src).glob("[0-9][0-9]_*.ipynb")):
        target = Path(dst) / nb.name
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{nb.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(nb.read_bytes())
            shutil.copymode(nb, tmp)
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links
                try:
                    with open(target, "xb") as f:
                        f.write(nb.read_bytes())
                except FileExistsError:
                    continue
            copied.append(target)
        finally:
            os.unlink(tmp)
    return copied


def write_jupyter_config(cache: Path) -> Path:
    """A Jupyter config directory holding our setting overrides; returns it (for
    JUPYTER_CONFIG_PATH)."""
    config = cache / "config"
    labconfig = config / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    target = labconfig / "default_setting_overrides.json"
    text = json.dumps(SETTING_OVERRIDES, indent=2) + "\n"
    if not target.exists() or target.read_text() != text:
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
    return config


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
    """The first free port from `port` on (Jupyter's rule), so the URL we print is the one it
    serves."""
    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            return s.getsockname()[1]
    for p in range(port, min(port + PORT_RETRIES + 1, 65536)):
        if _port_free(p):
            return p
    raise SystemExit(f"tplab lab: ports {port}-{port + PORT_RETRIES} on {HOST} are all busy; "
                     f"choose another with --port (make lab LAB_PORT=...)")


def _path_with_first(directory: str, path: str | None) -> str:
    rest = [p for p in (path if path is not None else os.defpath).split(os.pathsep)
            if p and os.path.normpath(p) != os.path.normpath(directory)]
    return os.pathsep.join([directory] + rest)


def build_command(args, environ=None) -> tuple[list[str], dict[str, str], str]:
    """Return (argv, environment, URL) for JupyterLab; starts nothing (it prepares the cache
    folders)."""
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
    # kernels must not initialise CUDA before launch forks
    env.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    config = write_jupyter_config(cache)
    others = [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep)
              if p and p != str(config)]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(config)] + others)
    # `tplab` (and this python) first on PATH for the server, so for its kernels and terminals.
    # Not resolved: in a venv, sys.executable's own directory is the venv's bin.
    env["PATH"] = _path_with_first(os.path.dirname(os.path.abspath(sys.executable)),
                                   env.get("PATH"))
    # Jupyter makes terminals login shells when its stdout is not a terminal (here it is a log
    # file), and a login shell's /etc/profile resets PATH: ask for a plain interactive shell.
    shell = env.get("SHELL") or shutil.which("sh", path=env["PATH"]) or "/bin/sh"
    default_url = f"/lab/tree/{START_NOTEBOOK}"
    argv = [
        sys.executable, "-m", "jupyterlab",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        f"--ServerApp.port_retries={PORT_RETRIES}",
        f"--ServerApp.root_dir={REPO}",
        "--ServerApp.allow_remote_access=False",
        f"--ServerApp.open_browser={not args.no_browser}",
        f"--ServerApp.terminado_settings=shell_command={json.dumps([shell])}",
        f"--LabApp.default_url={default_url}",
        f"--LabApp.workspaces_dir={cache / 'workspaces'}",
        f"--LabApp.user_settings_dir={cache / 'user-settings'}",
        "--LabApp.news_url=None",  # no fetching of Jupyter news: works offline, asks nothing
        # jupyter-lsp would otherwise run `npm` at start to look for language servers (writing
        # ~/.npm).
        "--LanguageServerManager.autodetect=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # containers often run as root; still loopback + token
        argv.append("--ServerApp.allow_root=True")
    url = f"http://{HOST}:{port}{default_url}?token={token}"
    return argv, env, url

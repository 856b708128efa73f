"""The launcher's promises: results in rank order, the real error, deadlines, no leftovers."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
import torch
import torch.distributed as dist

import tplab
from tplab import WorkerError


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """After every test: no child of this process is still alive."""
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = [c for c in psutil.Process().children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return
        time.sleep(0.05)
    pytest.fail(f"processes outlived the launch: {[(c.pid, c.name()) for c in alive]}")


def rank_times(x):
    t = torch.ones(4) * (dist.get_rank() + 1)
    dist.all_reduce(t)
    print(f"sum is {t[0].item():g}")
    return dist.get_rank() * x, int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), t[0].item()


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_results_in_rank_order_and_output_replayed(world_size, capsys):
    out = tplab.launch(rank_times, world_size, 10)
    total = world_size * (world_size + 1) / 2
    assert out == [(r * 10, r, world_size, total) for r in range(world_size)]
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"[rank {r}] sum is {total:g}" for r in range(world_size)]


def test_kwargs_and_env_match_torchrun():
    def worker(*, key):
        keys = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"]
        return key, {k: os.environ[k] for k in keys}, dist.get_backend()

    out = tplab.launch(worker, 2, key="v")
    assert [o[0] for o in out] == ["v", "v"]
    assert out[1][1]["RANK"] == "1" and out[1][1]["MASTER_ADDR"] == "127.0.0.1"
    assert out[0][2] == "gloo"


def raise_on_rank_1():
    if dist.get_rank() == 1:
        time.sleep(0.02)
        raise ValueError("boom on purpose")
    dist.barrier()  # rank 0 waits in a collective and dies of "connection closed"
    t = torch.ones(2)
    dist.all_reduce(t)


def test_root_cause_named_20_of_20():
    for _ in range(20):
        with pytest.raises(WorkerError) as info:
            tplab.launch(raise_on_rank_1, 2, timeout=30)
        err = info.value
        assert err.rank == 1
        assert str(err).startswith("rank 1 failed first: ValueError: boom on purpose")
        assert "raise ValueError" in str(err)  # the remote traceback


def test_hung_rank_fails_within_timeout_and_is_named():
    def hang():
        if dist.get_rank() == 1:
            time.sleep(600)
        dist.barrier()

    start = time.monotonic()
    with pytest.raises(WorkerError) as info:
        tplab.launch(hang, 2, timeout=3)
    # the timeout, then stack dumps and kills; ~4 s alone, once 5.03 s late in a full run (a
    # parent process grown by earlier tests forks slower) — bounded either way, never 600 s
    assert time.monotonic() - start < 3 + 4
    assert info.value.stuck == [0, 1]
    assert info.value.suspects == [1]  # rank 0 was waiting in the barrier, rank 1 was not
    assert "timed out after 3 s" in str(info.value)
    assert "time.sleep(600)" in str(info.value) or "in hang" in str(info.value)


def test_sigkilled_rank_fails_fast():
    def die():
        if dist.get_rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        dist.barrier()

    start = time.monotonic()
    with pytest.raises(WorkerError) as info:
        tplab.launch(die, 2, timeout=60)
    assert time.monotonic() - start < 10
    assert info.value.rank == 1
    assert "SIGKILL" in str(info.value)


def test_collective_mismatch_detected_with_debug():
    def mismatch():
        t = torch.ones(3)
        if dist.get_rank() == 0:
            dist.all_reduce(t)
        else:
            dist.broadcast(t, src=0)

    start = time.monotonic()
    with pytest.raises(WorkerError) as info:
        tplab.launch(mismatch, 2, timeout=30, debug=True)
    assert "mismatch between collectives" in str(info.value)
    assert time.monotonic() - start < 15


def test_grandchildren_are_killed_too(tmp_path):
    pidfile = tmp_path / "pid"

    def start_sleeper():
        proc = subprocess.Popen(["sleep", "300"])
        pidfile.write_text(str(proc.pid))
        return "started"

    assert tplab.launch(start_sleeper, 1) == ["started"]
    pid = int(pidfile.read_text())
    time.sleep(0.2)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_launch_after_parent_blas_work():
    torch.set_num_threads(2)
    a = torch.randn(512, 512)
    (a @ a).sum().item()  # BLAS/OpenMP state in the parent before the fork

    def matmul():
        b = torch.randn(256, 256)
        return float((b @ b).shape[0])

    assert tplab.launch(matmul, 2, timeout=30) == [256.0, 256.0]


@pytest.mark.parametrize("bad, match", [
    (dict(world_size=0), "world_size"),
    (dict(world_size="2"), "world_size"),
    (dict(world_size=2, timeout=0), "timeout"),
    (dict(world_size=2, backend="mpi"), "backend"),
])
def test_bad_input_refused_before_start(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tplab.launch(rank_times, bad.pop("world_size"), 1, **bad)


def test_not_callable_refused():
    with pytest.raises(TypeError, match="function"):
        tplab.launch("not a function", 2)


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="needs a machine with fewer than 2 GPUs")
def test_nccl_without_enough_gpus_refused():
    with pytest.raises(ValueError, match="one GPU per rank"):
        tplab.launch(rank_times, 2, 1, backend="nccl")


def test_cuda_initialised_in_parent_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.raises(RuntimeError, match="CUDA is already initialised"):
        tplab.launch(rank_times, 2, 1)


def test_unpicklable_result_is_a_clear_error():
    with pytest.raises(WorkerError, match="could not be sent back"):
        tplab.launch(lambda: (lambda: None), 1)


WORKER_SCRIPT = textwrap.dedent("""
    import os, sys, time, torch, torch.distributed as dist
    import tplab

    def worker(x):
        t = torch.ones(2) * (dist.get_rank() + 1)
        dist.all_reduce(t)
        return (dist.get_rank(), x, t[0].item())

    if __name__ == "__main__":
        out = tplab.launch(worker, 2, 7)
        if int(os.environ.get("RANK", 0)) == 0:
            print("RESULT", out, flush=True)
""")


def test_same_worker_runs_under_torchrun(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text(WORKER_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)]
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "RESULT [(0, 7, 3.0), (1, 7, 3.0)]" in proc.stdout
    # and the very same script without torchrun, through launch's own ranks
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert "RESULT [(0, 7, 3.0), (1, 7, 3.0)]" in proc.stdout, proc.stderr


def test_two_launches_at_once_do_not_collide(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text(WORKER_SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert "RESULT [(0, 7, 3.0), (1, 7, 3.0)]" in out


def test_keyboard_interrupt_leaves_no_rank_behind(tmp_path):
    pids = tmp_path / "pids"
    script = tmp_path / "interrupted.py"
    script.write_text(textwrap.dedent(f"""
        import os, time, tplab
        def worker():
            with open({str(pids)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            time.sleep(600)
        try:
            tplab.launch(worker, 2, timeout=300)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not pids.exists() or len(pids.read_text().split()) < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert "interrupted" in out
    for pid in map(int, pids.read_text().split()):
        assert not psutil.pid_exists(pid), f"rank process {pid} outlived the interrupted launch"

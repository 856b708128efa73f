"""The launcher's promises: results in rank order, the real error, deadlines, no leftovers."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
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
        alive = [c for c in psutil.Process().children(recursive=True)
                 if c.status() != psutil.STATUS_ZOMBIE and c.pid not in multiprocessing_helpers()]
        if not alive:
            return
        time.sleep(0.05)
    pytest.fail(f"processes outlived the launch: {[(c.pid, c.name()) for c in alive]}")


def multiprocessing_helpers() -> set[int]:
    """The fork server and its resource tracker: idle, shared by launches, gone when this
    process exits. Matched by pid: the ranks the server forks share its command line."""
    import multiprocessing.forkserver
    import multiprocessing.resource_tracker

    pids = {getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None),
            getattr(multiprocessing.resource_tracker._resource_tracker, "_pid", None)}
    return {pid for pid in pids if pid}


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


def test_hung_rank_fails_within_timeout_and_is_named(timed_out):
    def hang():
        if dist.get_rank() == 1:
            time.sleep(600)
        dist.barrier()

    err = timed_out(hang, 2, timeout=5)   # within the deadline + 8 s, never 600 s
    assert err.stuck == [0, 1], str(err)
    # rank 0 was waiting in the barrier, rank 1 was not
    assert err.suspects == [1], str(err)
    assert "timed out after" in str(err)
    assert "time.sleep(600)" in str(err) or "in hang" in str(err)


def never_joins():
    pass


@pytest.mark.parametrize("rank_1_is_in_init", [True, False])
def test_ranks_that_never_form_their_group_are_reported_joining(monkeypatch, rank_1_is_in_init):
    import tplab.ranks.child as child
    real = child.dist.init_process_group

    def init_process_group(*args, **kwargs):   # rank 1 stuck inside init: both ranks joining
        if int(os.environ["RANK"]) == 1:
            time.sleep(600)
        return real(*args, **kwargs)

    def start_late(*args, **kwargs):           # rank 1 never calls init: rank 0 waits for it
        if int(os.environ["RANK"]) == 1:
            time.sleep(600)
        return real(*args, **kwargs)

    patched = init_process_group if rank_1_is_in_init else start_late
    monkeypatch.setattr(child.dist, "init_process_group", patched)
    with pytest.raises(WorkerError) as info:
        tplab.launch(never_joins, 2, timeout=3, backend="gloo", start_method="fork")
    err, report = info.value, str(info.value)
    assert err.waiting == [] and "still joining the group" in report, report
    if rank_1_is_in_init:
        assert err.joining == [0, 1] and err.suspects == [0, 1], report
        assert "never finished forming" in report, report
    else:
        assert err.joining == [0] and err.computing == [1] and err.suspects == [1], report
        assert "Rank 0 waited in init_process_group for rank 1" in report, report


def hang_with_signal_on_another_thread():
    # The kernel may deliver SIGUSR1 to any thread that does not block it (gloo's, OpenMP's).
    # Force that: rank 0's main thread blocks it, so only the helper thread can take it.
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
    if dist.get_rank() == 0:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    else:
        time.sleep(600)
    dist.barrier()


def test_stuck_rank_stack_is_the_main_threads_whichever_thread_takes_the_signal():
    with pytest.raises(WorkerError) as info:
        tplab.launch(hang_with_signal_on_another_thread, 2, timeout=3)
    assert info.value.waiting == [0]  # its main thread was in the barrier
    assert info.value.suspects == [1]
    assert "hang_with_signal_on_another_thread" in str(info.value)


def hang_with_rank_1_stopped():
    if dist.get_rank() == 1:
        os.kill(os.getpid(), signal.SIGSTOP)  # as good as a rank the machine never schedules
    dist.barrier()


def test_a_rank_that_writes_no_stack_is_called_silent_not_computing():
    start = time.monotonic()
    with pytest.raises(WorkerError) as info:
        tplab.launch(hang_with_rank_1_stopped, 2, timeout=3)
    assert time.monotonic() - start < 3 + 5  # waited for the dump, a bounded while
    assert info.value.waiting == [0] and info.value.computing == []
    assert info.value.suspects == [1]
    assert "wrote no stack when asked:   rank 1" in str(info.value)


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
        tplab.launch(lambda: (i for i in range(3)), 1)  # a generator: not even cloudpickle sends it


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
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(script)]
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "RESULT [(0, 7, 3.0), (1, 7, 3.0)]" in proc.stdout
    # and the very same script without torchrun, through launch's own ranks
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
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
    # Ctrl-C raises KeyboardInterrupt, as in a terminal, even where the test runner was started
    # in the background (a non-interactive shell's `cmd &` ignores SIGINT, and a Python started
    # so installs no handler: the script would never see the signal)
    script.write_text(textwrap.dedent(f"""
        import os, signal, time, tplab
        signal.signal(signal.SIGINT, signal.default_int_handler)
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


# --- several threads per rank: the fork-after-OpenMP hazard, forced --------------------------

@pytest.fixture
def parent_ran_openmp():
    """Put this process in the state that breaks forked multi-threaded ranks: a parallel
    region has run here with two threads, so GNU OpenMP's pool exists (and fork won't copy it).
    The fork server is started first, outside any timing (about 2 s, once per process)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    a = torch.randn(1024, 1024)
    (a @ a).sum().item()
    tplab.launch(os.getpid, 1, threads=2, timeout=60)
    yield
    torch.set_num_threads(before)


def busy_threads(work) -> int:
    """How many of this process's threads gained CPU time while `work()` ran (Linux)."""
    def ticks():
        out = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[tid] = int(fields[11]) + int(fields[12])  # utime + stime
        return out

    before = ticks()
    work()
    after = ticks()
    return sum(1 for tid, t in after.items() if t > before.get(tid, 0))


def linear_forwards():
    torch.manual_seed(dist.get_rank())
    layer, x = torch.nn.Linear(512, 512), torch.randn(256, 512)
    for _ in range(5):
        x = torch.tanh(layer(x))
    big = torch.randn(1024, 1024)
    has_tasks = os.path.isdir("/proc/self/task")
    busy = busy_threads(lambda: [big @ big for _ in range(12)]) if has_tasks else None
    return torch.get_num_threads(), busy, float(x.detach().sum()), os.getppid()


@pytest.mark.parametrize("world_size", [1, 2])
def test_two_threads_per_rank_after_parent_ran_a_parallel_region(world_size, parent_ran_openmp):
    start = time.monotonic()
    got = tplab.launch(linear_forwards, world_size, threads=2, timeout=60)
    assert time.monotonic() - start < 30  # ~0.1 s with the server running
    for rank, (threads, busy, value, parent) in enumerate(got):
        # not forked from this process, whose OpenMP state is the hazard (holds on any machine,
        # hang or no hang here)
        assert parent != os.getpid(), f"rank {rank} was forked from the process that ran OpenMP"
        assert threads == 2, f"rank {rank} runs {threads} torch threads, asked for 2"
        if busy is not None:  # the matrix products really ran on two threads
            assert busy >= 2, f"rank {rank}: only {busy} thread(s) did the work"
        torch.manual_seed(rank)
        layer, x = torch.nn.Linear(512, 512), torch.randn(256, 512)
        for _ in range(5):
            x = torch.tanh(layer(x))
        assert value == pytest.approx(float(x.detach().sum()), rel=1e-4)


def test_start_method_is_fork_only_where_safe(monkeypatch):
    from tplab.ranks.start import pick_start_method

    assert pick_start_method(1, "gloo") == ("fork" if sys.platform == "linux" else "forkserver")
    assert pick_start_method(2, "gloo") == "forkserver"
    assert pick_start_method(1, "nccl") == "forkserver"
    monkeypatch.setattr(sys, "platform", "darwin")  # macOS: fork is unsafe with system frameworks
    assert pick_start_method(1, "gloo") == "forkserver"
    assert pick_start_method(1, "gloo", "spawn") == "spawn"
    with pytest.raises(ValueError, match="start_method"):
        pick_start_method(1, "gloo", "thread")


class CellResult:  # a class a notebook cell would define: not importable by the rank
    def __init__(self, rank):
        self.rank = rank


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_clean_start_keeps_results_output_and_environment(method, monkeypatch, capsys):
    monkeypatch.setenv("TPLAB_TEST_MARK", "set after the server started")
    offset = 5  # a closure, as cell functions capture variables

    def worker(x):
        t = torch.ones(2) * (dist.get_rank() + offset)
        dist.all_reduce(t)
        print(f"rank says {os.environ['TPLAB_TEST_MARK']}")
        return (CellResult(dist.get_rank()).rank, x, t[0].item(), os.environ["LOCAL_RANK"],
                os.getcwd())

    got = tplab.launch(worker, 2, 3, start_method=method, timeout=120)
    assert got == [(0, 3, 11.0, "0", os.getcwd()), (1, 3, 11.0, "1", os.getcwd())]
    out = capsys.readouterr().out
    assert "[rank 0] rank says set after the server started" in out
    assert out.index("[rank 0]") < out.index("[rank 1]")


def test_clean_start_names_the_failing_rank_with_its_traceback():
    def fail():
        if dist.get_rank() == 1:
            raise ValueError("bad shard on purpose")
        dist.barrier()

    with pytest.raises(WorkerError) as info:
        tplab.launch(fail, 2, threads=2, timeout=60)
    assert info.value.rank == 1
    assert "ValueError: bad shard on purpose" in str(info.value)
    assert "in fail" in str(info.value)


def test_clean_start_hang_is_named_and_killed():
    def hang():
        dist.barrier()  # both past the rendezvous, whatever the load
        if dist.get_rank() == 1:
            time.sleep(600)
        dist.barrier()

    tplab.launch(os.getpid, 1, threads=2, timeout=60)  # the fork server, started outside the timing
    start = time.monotonic()
    with pytest.raises(WorkerError) as info:
        tplab.launch(hang, 2, threads=2, timeout=8)
    assert time.monotonic() - start < 8 + 6
    assert info.value.stuck == [0, 1] and info.value.waiting == [0] and info.value.computing == [1]
    assert "waited in a collective for rank 1" in str(info.value)


def test_timeout_report_says_a_peer_returned_without_the_collective():
    def skip():
        dist.barrier()  # both past the rendezvous, whatever the load
        if dist.get_rank() == 0:
            dist.all_reduce(torch.ones(1))  # rank 1 never calls it
        return dist.get_rank()

    with pytest.raises(WorkerError) as info:
        tplab.launch(skip, 2, timeout=6)
    text = str(info.value)
    assert info.value.returned == [1] and info.value.waiting == [0], text
    assert "returned without calling the collective" in text


def test_timeout_report_does_not_blame_a_collective_when_ranks_compute():
    def spin():
        dist.barrier()  # both past the rendezvous, whatever the load
        while True:
            sum(range(1000))

    with pytest.raises(WorkerError) as info:
        tplab.launch(spin, 2, timeout=6)
    text = str(info.value)
    assert info.value.computing == [0, 1] and not info.value.waiting, text
    assert "No rank was waiting for another" in text


def test_cuda_parent_check_applies_to_fork_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.raises(RuntimeError, match="start_method='forkserver'"):
        tplab.launch(dist.get_rank, 1)
    assert tplab.launch(dist.get_rank, 1, start_method="forkserver") == [0]


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_scripts_without_main_guard_launch_clean_ranks(how, tmp_path):
    """forkserver would re-run an unguarded script in every rank, and cannot re-read stdin."""
    code = ("import tplab, torch, torch.distributed as dist\n"
            "def f():\n"
            "    t = torch.ones(1) * (dist.get_rank() + 1)\n"
            "    dist.all_reduce(t)\n"
            "    return t.item()\n"
            "print('RESULT', tplab.launch(f, 2, threads=2, timeout=60))\n")
    if how == "file":
        script = tmp_path / "unguarded.py"
        script.write_text(code)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              timeout=120)
    else:
        proc = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True,
                              timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("RESULT [3.0, 3.0]") == 1, proc.stdout


def test_clean_start_refuses_arguments_it_cannot_send():
    import threading

    with pytest.raises(TypeError, match="could not be serialised"):
        tplab.launch(dist.get_rank, 1, threading.Lock(), threads=2)


def test_clean_start_sends_cell_functions_that_touch_dist_and_a_config_attribute():
    """cloudpickle sends `dist`'s submodules named in the code; `config` names
    torch.distributed.config, a module of a ModuleType subclass that plain cloudpickle cannot
    send."""
    class Model:
        config = 3

    model = Model()

    def f():
        return dist.get_rank() + model.config

    assert tplab.launch(f, 2, threads=2, timeout=60) == [3, 4]


def test_forked_rank_refuses_more_threads_than_launched_with():
    def more_threads():
        torch.set_num_threads(2)

    with pytest.raises(WorkerError, match=r"threads=2\) starts such ranks from a clean process"):
        tplab.launch(more_threads, 1, timeout=30)
    assert tplab.launch(torch.set_num_threads, 1, 1) == [None]  # as many as launched with: fine


@pytest.mark.parametrize("threads", [1, 2])
def test_ranks_die_with_a_killed_launcher(threads, tmp_path):
    """A kernel killed with SIGKILL (OOM, a crash) takes its ranks with it, forked or not."""
    pids = tmp_path / "pids"
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(f"""
        import os, time, tplab
        def worker():
            with open({str(pids)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            time.sleep(600)
        tplab.launch(worker, 2, threads={threads}, timeout=300)
    """))
    proc = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not pids.exists() or len(pids.read_text().split()) < 2):
        time.sleep(0.05)
    family = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait()
    ranks = list(map(int, pids.read_text().split()))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in ranks):
        time.sleep(0.1)
    for p in ranks:
        assert not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE, \
            f"rank process {p} outlived its killed launcher"
    for p in family:  # the fork server and its resource tracker too
        assert not p.is_running() or p.status() == psutil.STATUS_ZOMBIE, \
            f"{p.pid} {p.cmdline()} outlived it"


def test_a_check_launch_that_never_formed_its_group_leaves_no_output(monkeypatch, capsys):
    """Lesson 05's checks try a launch whose ranks never joined once more; what the first try's
    ranks printed (a busy machine's rendezvous errors) must not reach the notebook, or nbval
    sees a stderr the committed notebook does not have."""
    import tplab.checks.lesson05 as lesson05
    from tplab.ranks.errors import WorkerError
    tries = []

    def launch(fn, n, *args, **kwargs):
        tries.append(kwargs["timeout"])
        if len(tries) == 1:
            print("[rank 1] rendezvous noise", file=sys.stderr)
            error = WorkerError("never joined")
            error.joining = [1]
            raise error
        print("[rank 0] the learner's output")
        return ["ok"] * n

    monkeypatch.setattr(lesson05, "launch", launch)
    assert lesson05.bounded_launch(None, 2, timeout=5, hint="") == ["ok", "ok"]
    out, err = capsys.readouterr()
    assert tries == [5, 30] and err == "" and out == "[rank 0] the learner's output\n"


def test_a_check_launch_that_failed_in_the_learners_code_keeps_its_output(monkeypatch, capsys):
    import tplab.checks.lesson05 as lesson05
    from tplab.ranks.errors import WorkerError

    def launch(fn, n, *args, **kwargs):
        print("[rank 0] printed before the error", file=sys.stderr)
        raise WorkerError("rank 0 failed first: ValueError")

    monkeypatch.setattr(lesson05, "launch", launch)
    with pytest.raises(WorkerError):
        lesson05.bounded_launch(None, 2, timeout=5, hint="")
    assert capsys.readouterr().err == "[rank 0] printed before the error\n"

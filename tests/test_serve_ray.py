"""tplab.serve.ray_pool: the replica pool on Ray actors.

One local Ray (2 CPUs) serves every test here (starting Ray costs seconds); each `serve_ray`
call still creates and kills its own actors. Failures are forced, not hoped for: a replica
SIGKILLs itself mid-request, one never returns, one raises. The last test checks that Ray and
every process it started are gone after `local_ray`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import time

import cloudpickle
import psutil
import pytest

ray = pytest.importorskip("ray")

from tplab.serve.engines import ModelEngine, SleepEngine  # noqa: E402
from tplab.serve.pool import ServeError  # noqa: E402
from tplab.serve.ray_pool import local_ray, serve_ray  # noqa: E402
from tplab.serve.workload import Request, make_workload, reference_outputs  # noqa: E402

_SESSION: dict = {}
# Ray's worker processes cannot import this test module: its engines travel by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _requests(lengths) -> list[Request]:
    return [Request(i, f"request {i}", (1, 2, 3), n) for i, n in enumerate(lengths)]


def _expected(requests) -> dict[int, list[int]]:
    return {r.id: SleepEngine(0).run(r) for r in requests}


class DieOnce(SleepEngine):
    """SIGKILLs its own process the first time it is given request `victim` (a marker file
    makes the retry, in another process, survive)."""

    def __init__(self, victim: int, marker: str):
        super().__init__(0.01)
        self.victim, self.marker = victim, marker

    def run(self, request):
        if request.id == self.victim and not os.path.exists(self.marker):
            with open(self.marker, "w") as f:
                f.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(request)


class AlwaysDie(SleepEngine):
    def run(self, request):
        os.kill(os.getpid(), signal.SIGKILL)


class StuckOn(SleepEngine):
    """Never returns from request `victim`; writes its pid where the test can find it."""

    def __init__(self, victim: int, pid_file: str):
        super().__init__(0.01)
        self.victim, self.pid_file = victim, pid_file

    def run(self, request):
        if request.id == self.victim:
            with open(self.pid_file, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(600)
        return super().run(request)


class RaiseOn(SleepEngine):
    def run(self, request):
        if request.id == 2:
            raise ValueError("bad request 2 (raised on purpose)")
        return super().run(request)


@pytest.fixture(scope="module")
def ray2():
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with contextlib.ExitStack() as stack:  # the last test closes it early, to check the end
        info = stack.enter_context(local_ray(2))
        _SESSION.update(info=info, stack=stack,
                        started={p.pid for p in psutil.Process().children(recursive=True)}
                        - before)
        yield info


def _per_worker(report) -> dict[int, list[int]]:
    """Each worker's request ids in the order it started them."""
    return {w: [r.id for r in sorted(report.records, key=lambda r: r.started) if r.worker == w]
            for w in range(report.workers)}


def test_real_model_same_tokens_and_same_schedule_as_serve(ray2):
    """SmolLM2 on two Ray replicas: greedy tokens equal the one-at-a-time reference; with
    round-robin shares served shortest first among arrived requests, each replica runs the
    same requests in the same order as tplab.serve's process pool does."""
    import torch

    from tplab.serve.pool import serve

    # shares {0, 2, 4} and {1, 3, 5}; sjf runs them 2, 4, 0 and 5, 3, 1 (fifo would not), and
    # request 0, the longest of its share, arrives late: it is last whenever it comes
    requests = [dataclasses.replace(r, max_new_tokens=n)
                for r, n in zip(make_workload(6), [5, 4, 1, 3, 2, 1])]
    arrivals = [0.05, 0, 0, 0, 0, 0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each replica runs: the same sums, the same greedy tokens
    try:
        reference = reference_outputs(requests)
    finally:
        torch.set_num_threads(threads)
    report = serve_ray(requests, ModelEngine(threads=1), 2, "round-robin", "sjf", timeout=120,
                       arrivals=arrivals)
    bad = {i: (report.outputs[i], reference[i]) for i in reference
           if report.outputs[i] != reference[i]}
    assert not bad, f"Ray replicas' greedy tokens differ from the reference: {bad}"
    assert all(r.attempts == 1 for r in report.records)
    assert all(a <= r.started <= r.finished for r, a in zip(report.records, arrivals))
    processes = serve(requests, SleepEngine(0.005), 2, "round-robin", "sjf", timeout=60,
                      arrivals=arrivals)
    assert _per_worker(report) == _per_worker(processes) == {0: [2, 4, 0], 1: [5, 3, 1]}


def test_killed_worker_request_retried_elsewhere_exactly_once(ray2, tmp_path):
    requests = _requests([3, 2, 4, 1, 2, 3])
    marker = tmp_path / "died"
    # contiguous: worker 0 owns 0-2, worker 1 owns 3-5; worker 0 dies on request 1
    report = serve_ray(requests, DieOnce(1, str(marker)), workers=2, policy="contiguous",
                       timeout=60)
    assert marker.exists(), "the replica was meant to die on request 1"
    assert report.outputs == _expected(requests)  # every request once, nothing lost
    by_id = {r.id: r for r in report.records}
    assert by_id[1].attempts == 2 and by_id[1].worker == 1
    assert by_id[2].worker == 1, "the dead worker's remaining share goes to the survivor"
    assert by_id[0].worker == 0 and all(by_id[i].attempts == 1 for i in (0, 2, 3, 4, 5))
    assert not psutil.pid_exists(int(marker.read_text()))


def test_all_workers_dead_is_a_clear_error(ray2):
    requests = _requests([1, 1, 1])
    with pytest.raises(ServeError, match=r"all 1 workers died") as err:
        serve_ray(requests, AlwaysDie(0), workers=1, timeout=60)
    assert err.value.unserved == [0, 1, 2]


def test_stuck_worker_named_at_the_deadline_and_killed(ray2, tmp_path):
    pid_file = tmp_path / "pid"
    requests = _requests([1, 1, 1, 1])
    # loading has its own deadline (a loaded machine may take long to start two actors); the
    # serving deadline is counted from when both replicas are ready
    with pytest.raises(ServeError, match=r"serving did not finish within its 3 s deadline: "
                                         r"worker \d is still running request 0") as err:
        serve_ray(requests, StuckOn(0, str(pid_file)), workers=2, timeout=3, load_timeout=120)
    stuck_for = time.time() - os.path.getmtime(pid_file)  # since request 0 started
    assert stuck_for < 3 + 5, f"the 3 s serving deadline was not kept ({stuck_for:.1f} s)"
    assert [rid for _, rid in err.value.stuck] == [0] and err.value.unserved == [0]
    assert not psutil.pid_exists(int(pid_file.read_text())), "the stuck replica outlived serve_ray"


def test_worker_exception_reaches_the_caller(ray2):
    with pytest.raises(ServeError, match=r"worker 0 failed on request 2") as err:
        serve_ray(_requests([1, 1, 1, 1]), RaiseOn(0.01), workers=1, timeout=60)
    assert err.value.request == 2
    assert "ValueError" in err.value.traceback and "raised on purpose" in err.value.traceback
    assert "RaiseOn" in err.value.traceback or "in run" in err.value.traceback


def test_bad_arguments_fail_before_ray_starts():
    with pytest.raises(ValueError, match="policy"):
        serve_ray(_requests([1]), SleepEngine(0), policy="random")
    with pytest.raises(ValueError, match="distinct"):
        serve_ray(_requests([1, 1])[:1] * 2, SleepEngine(0))


def test_num_gpus_reaches_the_actors_options(ray2):
    # the local Ray has no GPU: an actor that asks for one is never placed, and the load
    # deadline says so; the default (0) loads and serves
    assert ray.cluster_resources().get("GPU", 0) == 0
    with pytest.raises(ServeError, match=r"0 GPUs for 2 workers of one CPU and 1 GPU each") as err:
        serve_ray(_requests([1, 1]), SleepEngine(0.01), workers=2, num_gpus=1, timeout=60,
                  load_timeout=1.5)
    assert sorted(w for w, _ in err.value.stuck) == [0, 1]
    report = serve_ray(_requests([1, 1]), SleepEngine(0.01), workers=2, timeout=60)
    assert report.outputs == _expected(_requests([1, 1]))


def test_num_gpus_must_be_a_number_at_least_zero():
    for bad in (-1, -0.5, "1", None, float("nan")):
        with pytest.raises(ValueError, match="num_gpus must be a number >= 0"):
            serve_ray(_requests([1]), SleepEngine(0), num_gpus=bad)


def test_ray_and_its_processes_are_gone_after_local_ray(ray2):
    assert ray.is_initialized()
    _SESSION["stack"].close()  # leaves local_ray
    assert not ray.is_initialized()
    assert _SESSION["started"], "local_ray started no processes? (nothing to check)"
    deadline = time.monotonic() + 10
    while (left := [p for p in _SESSION["started"] if psutil.pid_exists(p)
                    and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"Ray processes left running after shutdown: {left}"
    assert not os.path.exists(_SESSION["info"]["session_dir"]), "Ray's session folder was left"

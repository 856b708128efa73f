"""tplab.serve's pool: every request served exactly once whatever the policy, static shares
kept, dynamic and shortest-first doing what they claim, a killed worker's request retried and
never served twice, errors and a stuck worker named, no process left behind; and the real
model's outputs equal the one-at-a-time reference."""
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from tplab.models.loading import load_llama
from tplab.serve import (
    ORDERS,
    POLICIES,
    PROMPTS,
    Record,
    Report,
    Request,
    ServeError,
    SleepEngine,
    draw_lengths,
    make_workload,
    serve,
    static_shares,
)
from tplab.serve.pool import _Pool  # its pipes, read directly

TICK = 0.004  # seconds per fake token


def requests_of(lengths):
    return [Request(i, f"request {i}", (1, 2, 3), n) for i, n in enumerate(lengths)]


def expected(requests):
    return {r.id: [r.id] * r.max_new_tokens for r in requests}


def gone(pids):
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True


class PidEngine(SleepEngine):
    """Writes its pid to `folder` when loaded (so a test can check every worker is gone), and
    `folder/<request id>` when it starts a request."""

    def __init__(self, folder, per_token_s=TICK):
        super().__init__(per_token_s)
        self.folder = Path(folder)

    def load(self):
        (self.folder / f"pid{os.getpid()}").touch()

    def pids(self):
        return [int(p.name[3:]) for p in self.folder.glob("pid*")]

    def run(self, request):
        (self.folder / str(request.id)).write_text(str(os.getpid()))
        return super().run(request)


class DieOnce(PidEngine):
    """SIGKILLs its own worker on request `victim`, the first time any worker runs it."""

    def __init__(self, folder, victim):
        super().__init__(folder)
        self.victim = victim

    def run(self, request):
        if request.id == self.victim and not (self.folder / "killed").exists():
            (self.folder / "killed").write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(request)


class AlwaysDie(PidEngine):
    def run(self, request):
        if request.id == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(request)


class DieAfterAnswering(PidEngine):
    """The worker that answered request 1 dies when it starts its next request."""

    def run(self, request):
        if (self.folder / "1").exists() and int((self.folder / "1").read_text()) == os.getpid():
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(request)


class Raises(PidEngine):
    def run(self, request):
        if request.id == 2:
            raise ValueError("bad request two")
        return super().run(request)


class LoadFails(SleepEngine):
    def load(self):
        raise OSError("no weights here")


class Stuck(PidEngine):
    def run(self, request):
        if request.id == 1:
            time.sleep(1000)  # stuck_here
        return super().run(request)


def test_static_shares():
    assert static_shares(7, 3, "contiguous") == [[0, 1, 2], [3, 4, 5], [6]]
    assert static_shares(7, 3, "round-robin") == [[0, 3, 6], [1, 4], [2, 5]]
    assert static_shares(2, 3, "contiguous") == [[0], [1], []]
    with pytest.raises(ValueError, match="static"):
        static_shares(4, 2, "dynamic")


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("order", ORDERS)
def test_every_request_once_and_static_shares_kept(policy, order):
    requests = requests_of([5, 1, 3, 2, 4, 1, 2])
    report = serve(requests, SleepEngine(TICK), workers=3, policy=policy, order=order, timeout=30)
    assert [r.id for r in report.records] == [r.id for r in requests]
    assert report.outputs == expected(requests)
    assert all(r.attempts == 1 and r.submitted <= r.started <= r.finished for r in report.records)
    by_worker = {w: [r for r in report.records if r.worker == w] for w in range(3)}
    if policy != "dynamic":
        assert {w: [r.id for r in rs] for w, rs in by_worker.items()} == dict(
            enumerate(static_shares(len(requests), 3, policy)))
    for rs in by_worker.values():  # one request at a time per worker, in the queue's order
        rs.sort(key=lambda r: r.started)
        assert all(a.finished <= b.started for a, b in zip(rs, rs[1:]))
        if order == "sjf" and policy != "dynamic":
            lengths = [requests[r.id].max_new_tokens for r in rs]
            assert lengths == sorted(lengths)
    assert (report.policy, report.order, report.workers) == (policy, order, 3)


def test_dynamic_beats_a_static_split_of_a_skewed_queue():
    tick = 0.01
    # the long requests sit in the first half: contiguous gives them all to worker 0
    requests = requests_of([30, 30, 30, 2, 2, 2])
    static = serve(requests, SleepEngine(tick), 2, "contiguous", timeout=30)
    dynamic = serve(requests, SleepEngine(tick), 2, "dynamic", timeout=30)
    assert static.outputs == dynamic.outputs == expected(requests)
    assert static.makespan >= 90 * tick  # worker 0 runs 90 tokens' worth alone
    # greedy list scheduling ends within total / w + the longest job (+ 50 ms a request for
    # hand-overs on a loaded machine)
    work = sum(r.max_new_tokens for r in requests) * tick
    assert dynamic.makespan <= work / 2 + 30 * tick + 0.05 * len(requests)
    assert dynamic.makespan < 0.85 * static.makespan
    assert dynamic.throughput > static.throughput


def test_shortest_first_cuts_the_wait_behind_a_long_request():
    requests = requests_of([60, 2, 2, 2, 2])  # a long request at the head of the queue
    fifo = serve(requests, SleepEngine(TICK), 1, "dynamic", "fifo", timeout=30)
    sjf = serve(requests, SleepEngine(TICK), 1, "dynamic", "sjf", timeout=30)
    assert [r.id for r in sorted(fifo.records, key=lambda r: r.started)] == [0, 1, 2, 3, 4]
    assert [r.id for r in sorted(sjf.records, key=lambda r: r.started)] == [1, 2, 3, 4, 0]
    # p50: the third to finish, after 64 ticks behind the long one, after 6 in front of it
    assert sjf.p50 < fifo.p50 - 40 * TICK
    assert sjf.p95 >= 68 * TICK and fifo.p95 >= 68 * TICK  # the same work on one worker


def test_arrivals_are_waited_for():
    requests = requests_of([2, 2, 2])
    arrivals = [0.0, 0.3, 0.15]
    report = serve(requests, SleepEngine(TICK), 1, "dynamic", arrivals=arrivals, timeout=30)
    assert [r.submitted for r in report.records] == arrivals
    assert all(r.started >= r.submitted - 1e-3 for r in report.records)
    assert [r.id for r in sorted(report.records, key=lambda r: r.started)] == [0, 2, 1]
    assert max(report.waits) < 0.12  # an idle worker starts each one as it arrives
    with pytest.raises(ServeError, match=r"requests \[2\] were still waiting to arrive"):
        serve(requests, SleepEngine(TICK), 1, arrivals=[0.0, 0.0, 60.0], timeout=0.5)


@pytest.mark.parametrize("policy", ["dynamic", "contiguous"])
def test_a_killed_worker_loses_nothing(tmp_path, policy):
    requests = requests_of([3, 3, 8, 3, 3, 3])
    engine = DieOnce(tmp_path, victim=2)
    report = serve(requests, engine, 2, policy, timeout=30)
    assert report.outputs == expected(requests)  # every request, exactly once
    killed = int((tmp_path / "killed").read_text())
    assert int((tmp_path / "2").read_text()) != killed  # the retry ran on the survivor
    victim = report.records[2]
    assert victim.attempts == 2 and [r.attempts for r in report.records if r.id != 2] == [1] * 5
    if policy == "contiguous":  # worker 0 served 0 and 1, died on 2; worker 1 took the rest
        assert [r.worker for r in report.records] == [0, 0, 1, 1, 1, 1]
    assert gone(engine.pids())


def test_answers_before_a_death_stand_and_the_rest_of_its_share_moves(tmp_path):
    requests = requests_of([2, 2, 2, 2, 2, 2])
    engine = DieAfterAnswering(tmp_path)
    report = serve(requests, engine, 2, "round-robin", timeout=30)
    assert report.outputs == expected(requests)
    # worker 1's share is 1, 3, 5: it answered 1, died on 3; 3 and 5 went to worker 0
    assert [r.attempts for r in report.records] == [1, 1, 1, 2, 1, 1]
    assert [r.worker for r in report.records] == [0, 1, 0, 0, 0, 0]
    assert gone(engine.pids())


def _send_and_die(conn):
    conn.send(("done", 0, 1.0, 2.0, [0]))
    os.kill(os.getpid(), signal.SIGKILL)


def test_the_last_message_of_a_dead_worker_is_read():
    """A result sent just before dying is read (served once), never lost to the exit."""
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=_send_and_die, args=(there,))
    proc.start()
    there.close()
    proc.join()
    pool = _Pool(requests_of([1]), SleepEngine(TICK), 1, "dynamic", "fifo", 10.0, [0.0])
    pool.procs, pool.conns = [proc], [here]
    assert pool._receive(0) == ("done", 0, 1.0, 2.0, [0])  # served: never handed out again
    assert pool._receive(0) is None  # and then it is dead


def test_every_worker_dead_is_a_clear_error(tmp_path):
    engine = AlwaysDie(tmp_path)
    with pytest.raises(ServeError, match=r"all 2 workers died.*SIGKILL") as info:
        serve(requests_of([2] * 6), engine, 2, "dynamic", timeout=30)
    assert 3 in info.value.unserved and 0 not in info.value.unserved
    assert gone(engine.pids())


def test_a_workers_exception_names_worker_request_and_traceback(tmp_path):
    engine = Raises(tmp_path)
    with pytest.raises(ServeError, match="on request 2: ValueError: bad request two") as info:
        serve(requests_of([2] * 5), engine, 2, "round-robin", timeout=30)
    err = info.value
    assert (err.worker, err.request) == (0, 2)  # round-robin: request 2 is worker 0's
    assert "in run" in err.traceback and "bad request two" in str(err)
    assert gone(engine.pids())
    with pytest.raises(ServeError, match="loading its replica: OSError: no weights here"):
        serve(requests_of([1]), LoadFails(TICK), 1, timeout=30)


def test_a_stuck_worker_is_named_at_the_deadline(tmp_path):
    engine = Stuck(tmp_path)
    start = time.monotonic()
    with pytest.raises(ServeError, match="within its 2 s deadline") as info:
        serve(requests_of([2] * 4), engine, 2, "round-robin", timeout=2)
    assert time.monotonic() - start < 2 + 6
    err = info.value
    assert err.stuck == [(1, 1)] and (err.worker, err.request) == (1, 1)
    assert "worker 1 is still running request 1" in str(err) and "stuck_here" not in str(err)
    assert "in run" in str(err) and "test_serve_pool.py" in str(err)  # its stack
    assert err.unserved == [1, 3]  # worker 1's share: the stuck one and the one behind it
    assert gone(engine.pids())


class SlowLoad(PidEngine):
    def load(self):
        super().load()
        time.sleep(1000)  # loading_here


def test_loading_has_its_own_deadline_and_names_who_is_still_loading(tmp_path):
    engine = SlowLoad(tmp_path)
    start = time.monotonic()
    with pytest.raises(ServeError, match=r"did not load within 1 s \(load_timeout\)") as info:
        serve(requests_of([1, 1]), engine, 2, timeout=60, load_timeout=1)
    assert time.monotonic() - start < 1 + 6, "the load deadline was not kept"
    assert info.value.stuck == [(0, None), (1, None)] and info.value.unserved == [0, 1]
    assert "worker 0 is still loading its replica" in str(info.value)
    assert "in load" in str(info.value), "the stack of where it was loading"
    assert gone(engine.pids())


def test_bad_arguments():
    requests = requests_of([1, 1])
    for kwargs, message in [({"policy": "random"}, "policy"), ({"order": "lifo"}, "order"),
                            ({"workers": 0}, "workers"), ({"timeout": 0}, "timeout"),
                            ({"load_timeout": -1}, "load_timeout"),
                            ({"arrivals": [0.0]}, "arrivals")]:
        with pytest.raises(ValueError, match=message):
            serve(requests, SleepEngine(TICK), **kwargs)
    with pytest.raises(ValueError, match="distinct"):
        serve(requests_of([1]) * 2, SleepEngine(TICK))
    with pytest.raises(TypeError, match="load"):
        serve(requests, object())


def test_report_figures():
    records = [Record(0, 0, 0.0, 0.0, 1.0, [5, 6]), Record(2, 1, 0.5, 1.0, 3.0, [7] * 4),
               Record(1, 0, 0.0, 1.0, 2.0, [8, 9], attempts=2)]
    report = Report(records, 2, "dynamic")
    assert [r.id for r in report.records] == [0, 1, 2]
    assert report.makespan == 3.0 and report.tokens == 8 and report.throughput == 8 / 3
    assert report.latencies == [1.0, 2.0, 2.5] and report.waits == [0.0, 1.0, 0.5]
    assert report.p50 == 2.0 and report.p95 == 2.5
    assert report.outputs == {0: [5, 6], 1: [8, 9], 2: [7, 7, 7, 7]}
    data = json.loads(report.to_json())
    assert data["tok_s"] == 8 / 3 and data["p95_ms"] == 2500 and data["records"][1]["attempts"] == 2


def test_workload_is_seeded_and_heavy_tailed():
    assert len(PROMPTS) >= 32 and len(set(PROMPTS)) == len(PROMPTS)
    words = sorted(len(p.split()) for p in PROMPTS)
    assert words[0] <= 3 and words[-1] >= 40  # a few words to a paragraph
    lengths = draw_lengths(200, seed=0, cap=48)
    assert lengths == draw_lengths(200, seed=0, cap=48) != draw_lengths(200, seed=1, cap=48)
    assert min(lengths) >= 1 and max(lengths) == 48
    ordered = sorted(lengths)
    assert ordered[-20] >= 3 * ordered[100]  # the top tenth is several times the median


class TwoThreads(SleepEngine):
    """More than one thread: the pool cannot fork (tplab.ranks.start), so this engine travels
    by value (cloudpickle: a class defined in a test module) to workers from the fork server."""
    threads = 2

    def run(self, request):
        import torch

        assert torch.get_num_threads() == 2 and os.environ["TPLAB_SERVE_TEST"] == "yes"
        return super().run(request)


def test_workers_from_the_fork_server(monkeypatch):
    monkeypatch.setenv("TPLAB_SERVE_TEST", "yes")  # the parent's environment reaches them
    requests = requests_of([2, 3, 1])
    report = serve(requests, TwoThreads(TICK), 2, "dynamic", timeout=60)
    assert report.outputs == expected(requests)


def test_the_real_model_served_by_two_workers_gives_the_reference():
    import torch

    from tplab.models.gguf_file import GGUFModelFile
    from tplab.serve import ModelEngine, reference_outputs

    torch.set_num_threads(1)  # two spinning threads crawl when other processes share the cores
    requests = make_workload(n=3, seed=0, cap=4)
    assert [r.text for r in requests] == PROMPTS[:3] and make_workload(3, 0, 4) == requests
    model_file = GGUFModelFile()  # opened once: the forked workers inherit it
    reference = reference_outputs(requests, load_llama(model_file))
    assert all(len(reference[r.id]) == r.max_new_tokens for r in requests)  # none stops early
    report = serve(requests, ModelEngine(threads=1, path=model_file), 2, "dynamic", timeout=120)
    assert report.outputs == reference
    assert {r.worker for r in report.records} == {0, 1}

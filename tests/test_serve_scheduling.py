"""tplab.serve.scheduling.Scheduler on its own, without processes: what each policy hands to
whom, in what order, and where a lost worker's requests go. The process pool and the Ray pool
run these same rules (tests/test_serve_pool.py, tests/test_serve_ray.py)."""
import pytest

from tplab.serve import Request, Scheduler, ServeError


class Recorder(Scheduler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.handed = []

    def hand_out(self, w, request):
        self.handed.append((w, request.id))


def requests_of(lengths):
    return [Request(i, f"request {i}", (1,), n) for i, n in enumerate(lengths)]


def finish(s, w):
    rid = s.requests[s.busy[w]].id
    s.done(w, rid, 0.0, 1.0, [rid])


def test_dynamic_hands_the_next_request_to_whoever_is_free():
    s = Recorder(requests_of([5, 1, 1, 1]), 2, "dynamic", "fifo")
    s.dispatch(0.0)
    assert s.handed == [(0, 0), (1, 1)]
    finish(s, 1)
    s.dispatch(0.0)
    assert s.handed[-1] == (1, 2), "the free worker takes the next in line"


@pytest.mark.parametrize("policy, shares", [("contiguous", [[0, 1], [2, 3]]),
                                            ("round-robin", [[0, 2], [1, 3]])])
def test_static_workers_serve_only_their_share(policy, shares):
    s = Recorder(requests_of([1, 1, 1, 1]), 2, policy, "fifo")
    s.dispatch(0.0)
    finish(s, 1), s.dispatch(0.0), finish(s, 1), s.dispatch(0.0)
    assert [rid for w, rid in s.handed if w == 1] == shares[1]
    assert 1 not in s.busy, "worker 1 stays idle once its share is done"


def test_sjf_picks_the_shortest_arrived_request():
    s = Recorder(requests_of([9, 3, 1, 2]), 1, "dynamic", "sjf", arrivals=[0, 0, 5, 0])
    s.dispatch(0.0)
    assert s.handed == [(0, 3)], "request 2 is shortest but has not arrived"
    finish(s, 0), s.dispatch(6.0)
    assert s.handed[-1] == (0, 2)


def test_next_arrival_waits_for_the_first_request_an_idle_worker_could_take():
    s = Recorder(requests_of([1, 1]), 1, "dynamic", "fifo", arrivals=[2.0, 3.5])
    s.dispatch(0.5)
    assert s.handed == [] and s.next_arrival(0.5) == pytest.approx(1.5)


def test_a_lost_dynamic_worker_puts_its_request_first_in_line():
    s = Recorder(requests_of([1, 1, 1]), 2, "dynamic", "fifo")
    s.dispatch(0.0)
    s.lose(0, "worker 0 died")
    s.dispatch(0.0)
    finish(s, 1), s.dispatch(0.0)
    assert s.handed[-1] == (1, 0) and s.attempts[0] == 2


def test_a_lost_static_worker_share_goes_to_the_survivors():
    s = Recorder(requests_of([1] * 6), 3, "contiguous", "fifo")  # shares 01 23 45
    s.dispatch(0.0)
    s.lose(0, "worker 0 died")  # request 0 interrupted, request 1 waiting
    assert list(s.queues[1]) == [0, 3] and list(s.queues[2]) == [5, 1]


def test_no_worker_left_names_what_has_no_result():
    s = Recorder(requests_of([1, 1, 1]), 1, "dynamic", "fifo")
    s.dispatch(0.0), finish(s, 0), s.dispatch(0.0)
    with pytest.raises(ServeError, match=r"all 1 workers died \(gone\).*\[1, 2\]") as err:
        s.lose(0, "gone")
    assert err.value.unserved == [1, 2]

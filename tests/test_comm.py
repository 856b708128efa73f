"""tplab.comm against torch.distributed: same sums, identical on every rank, counted right."""
import time

import pytest
import torch
import torch.distributed as dist

import tplab
from tplab import comm

LENGTHS = [1, 2, 3, 5, 576, 1001, 4099]
DTYPES = [torch.float32, torch.float64, torch.int64]


def compare_with_torch(lengths):
    """Every rank: integer-valued data (exact in any summation order) and random floats."""
    rank = dist.get_rank()
    for dtype in DTYPES:
        for n in lengths:
            x = ((torch.arange(n) * 7 + rank * 13) % 101 - 50).to(dtype)
            expected = x.clone()
            dist.all_reduce(expected)
            for name, fn in (("ring", comm.ring_all_reduce), ("tplab", comm.all_reduce)):
                got = x.clone()
                assert fn(got) is got, f"{name} must reduce in place"
                assert torch.equal(got, expected), \
                    f"{name}: {dtype} length {n} differs on rank {rank}"
    x = torch.randn(3, 333, generator=torch.Generator().manual_seed(rank)).t()  # not contiguous
    expected = x.contiguous()
    dist.all_reduce(expected)
    results = {}
    for name, fn in (("ring", comm.ring_all_reduce), ("tplab", comm.all_reduce)):
        got = x.clone().t().contiguous().t()
        fn(got)
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
        results[name] = got
    return results


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_ring_and_fast_all_reduce_equal_torch(world_size):
    results = tplab.launch(compare_with_torch, world_size, LENGTHS, timeout=120)
    for name in ("ring", "tplab"):  # bitwise the same on every rank
        for r in range(1, world_size):
            assert torch.equal(results[r][name], results[0][name]), \
                f"{name}: rank {r} differs from rank 0"


@pytest.mark.parametrize("world_size", [5, 8])
def test_ring_correct_up_to_eight_ranks(world_size):
    tplab.launch(compare_with_torch, world_size, [1, 7, 130], timeout=120)


def back_to_back(iters):
    rank, n = dist.get_rank(), dist.get_world_size()
    for i in range(iters):
        length = 1 + (i * 37) % 700  # sizes change between consecutive calls too
        x = torch.full((length,), float(i + 1)) * (rank + 1)
        comm.all_reduce(x)
        expected = (i + 1) * n * (n + 1) / 2
        assert torch.all(x == expected), f"call {i}: got {x[:3].tolist()}…, expected {expected}"
    return iters


@pytest.mark.parametrize("world_size", [2, 3])
def test_thousand_back_to_back_fast_all_reduces(world_size):
    assert tplab.launch(back_to_back, world_size, 1000, timeout=120) == [1000] * world_size


def test_large_tensor_goes_through_in_chunks():
    def big():
        x = torch.arange(3 * (4 << 20) // 4 + 5, dtype=torch.float32) * (dist.get_rank() + 1)
        expected = x.clone()
        dist.all_reduce(expected)
        comm.all_reduce(x)
        return torch.equal(x, expected)

    assert tplab.launch(big, 2, timeout=120) == [True, True]


def traced_ring(length):
    with comm.trace() as t:
        comm.ring_all_reduce(torch.ones(length))
        dist.all_reduce(torch.ones(10))
        dist.broadcast(torch.ones(4, dtype=torch.float64), src=0)
        comm.all_reduce(torch.ones(576))
    return t.summary(), [(c.op, c.impl) for c in t.calls if c.op == "all_reduce"]


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_tracer_counts_match_the_ring_formulas(world_size):
    n, length = world_size, 1200  # 1200 divides by 2, 3 and 4
    for summary, impls in tplab.launch(traced_ring, world_size, length):
        assert summary["isend"]["calls"] == 2 * (n - 1)                   # 2(n-1) steps
        assert summary["isend"]["bytes"] == 2 * (n - 1) * length * 4 // n  # 2(n-1)/n · N bytes
        assert summary["recv"] == summary["isend"]
        assert summary["all_reduce"] == {"calls": 3, "bytes": length * 4 + 10 * 4 + 576 * 4}
        assert summary["broadcast"] == {"calls": 1, "bytes": 32}
        assert impls == [("all_reduce", "ring"), ("all_reduce", "torch"), ("all_reduce", "shm")]


def test_tracer_restores_torch_distributed():
    original = dist.all_reduce
    with comm.trace():
        assert dist.all_reduce is not original
    assert dist.all_reduce is original


def test_other_dtypes_and_autograd_tensors_take_a_correct_route():
    def odd_inputs():
        rank = dist.get_rank()
        # bfloat16 is not numpy's: torch's route
        half = torch.full((5,), 1.5, dtype=torch.bfloat16) * (rank + 1)
        comm.all_reduce(half)
        leaf = torch.ones(4, requires_grad=True)
        with torch.no_grad():
            leaf.mul_(rank + 1)
        comm.all_reduce(leaf)
        return half.float().tolist(), leaf.detach().tolist()

    for half, leaf in tplab.launch(odd_inputs, 2):
        assert half == [4.5] * 5 and leaf == [3.0] * 4


def test_fast_all_reduce_max():
    def maxed():
        x = torch.tensor([float(dist.get_rank()), -float(dist.get_rank()), 5.0])
        comm.all_reduce(x, op="max")
        return x.tolist()

    assert tplab.launch(maxed, 3) == [[2.0, 0.0, 5.0]] * 3


def _late_rank_one(delay):
    import time
    x = torch.ones(576)
    with comm.AllReduceClock() as clock:
        for _ in range(5):
            if dist.get_rank() == 1:
                time.sleep(delay)  # rank 0 arrives first and waits for rank 1, five times
            comm.all_reduce(x)
    return clock.split(), float(x[0])


def test_all_reduce_clock_splits_waiting_from_communicating():
    (r0, x0), (r1, x1) = tplab.launch(_late_rank_one, 2, 0.03)
    assert x0 == x1 == 32.0                     # the all-reduces still ran: 1 -> 2 -> ... -> 32
    assert r0["calls"] == r1["calls"] == 5
    assert r0["total_s"] >= 5 * 0.03 * 0.8  # rank 0 sat in the all-reduces while rank 1 slept
    assert r0["wait_s"] >= 5 * 0.03 * 0.8   # ... which the clock calls waiting, not communication
    assert r1["comm_s"] < 5 * 0.03 * 0.2    # the late rank's time inside is the collective alone
    assert r1["wait_s"] < r0["wait_s"] / 5  # the late rank hardly waits at all


def _uneven_calls():
    with comm.AllReduceClock() as clock:
        for _ in range(1 + dist.get_rank()):
            clock.durations.append(0.0)  # as if rank 1 had timed one all-reduce more
    try:
        clock.split()
    except RuntimeError as exc:
        return str(exc)
    return None


def test_all_reduce_clock_refuses_different_call_counts():
    messages = tplab.launch(_uneven_calls, 2)
    assert all(m and "different numbers of all-reduces" in m for m in messages)


def _route_and_sums():
    t = torch.arange(6, dtype=torch.float32) * (dist.get_rank() + 1)
    comm.all_reduce(t)
    big = torch.full((3000,), float(dist.get_rank()))
    comm.all_reduce(big, op="max")
    route = comm._routes[None]
    return route if isinstance(route, str) else "shm", t.tolist(), float(big[0])


@pytest.mark.parametrize("machine, route",
                         [("aarch64", "torch"), ("arm64", "torch"), ("x86_64", "shm")])
def test_shared_memory_route_only_where_stores_stay_in_order(machine, route, monkeypatch, capsys):
    import platform

    from tplab.comm import shm

    if route == "shm" and not shm.stores_in_order(platform.machine()):
        pytest.skip("pretending to be x86 would run the unordered path for real on this CPU")

    monkeypatch.setattr(shm, "MACHINE", machine)  # forked ranks inherit the pretended CPU
    got = tplab.launch(_route_and_sums, 2)
    expected = (torch.arange(6, dtype=torch.float32) * 3).tolist()
    assert got == [(route, expected, 1.0)] * 2
    err = capsys.readouterr().err
    said = err.count("shared-memory all-reduce is off")
    assert said == (1 if route == "torch" else 0), err  # said once, by one rank


def test_stores_in_order_is_x86_only():
    from tplab.comm.shm import stores_in_order

    assert stores_in_order("x86_64") and stores_in_order("AMD64")
    assert not stores_in_order("aarch64") and not stores_in_order("arm64")
    assert not stores_in_order("ppc64le")


def _hook_events():
    """Every kind of call once, with a subscriber of each kind; returns what each was told."""
    import warnings

    from tplab.comm import hooks

    seen, tplab_only = {}, []  # seen: call -> the kinds it was reported with, calls in start order

    def note(kind, call):
        seen.setdefault(call, []).append(kind)

    def broken(kind, call):
        raise ValueError("a subscriber with a bug")

    x = torch.full((576,), float(dist.get_rank() + 1))
    tplab_calls = hooks.subscribe(lambda kind, call: tplab_only.append((kind, call.op)),
                                  direct=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with hooks.subscribe(note), hooks.subscribe(broken), tplab_calls:
            comm.all_reduce(x)                                      # shared memory, blocking
            work = comm.all_reduce(x, async_op=True)                # torch, in the background
            work.wait()
            direct = dist.all_reduce(x, async_op=True)              # straight to torch.distributed
            direct.wait()
            peer = 1 - dist.get_rank()                              # gloo's p2p: no future
            request = dist.isend(torch.ones(3), peer)
            dist.recv(torch.empty(3), peer)
            request.wait()
            background = comm.all_reduce(torch.ones(5), async_op=True)  # never waited for
            deadline = time.monotonic() + 10
            while background.collective.end is None and time.monotonic() < deadline:
                time.sleep(0.001)                                   # the future's callback tells
    calls = [(c.op, c.impl, c.async_op, c.direct, c.nbytes, sorted(kinds), c.end is not None and
              c.end >= c.start) for c, kinds in seen.items()]
    return calls, tplab_only, float(x[0]), [str(w.message) for w in caught]


def test_hooks_report_sync_async_and_direct_calls_once_each():
    for calls, tplab_only, value, warned in tplab.launch(_hook_events, 2):
        assert value == 3.0 * 2 * 2            # 1+2 summed, then doubled twice: the calls all ran
        ended, waited = ["end", "start"], ["end", "start", "wait"]
        # op, impl, async_op, direct, bytes, the kinds reported (sorted), end >= start
        assert calls == [
            ("all_reduce", "shm", False, False, 576 * 4, ended, True),
            ("all_reduce", "torch", True, False, 576 * 4, waited, True),
            ("all_reduce", "torch", True, True, 576 * 4, waited, True),
            ("isend", "torch", True, True, 3 * 4, waited, True),
            ("recv", "torch", False, True, 3 * 4, ended, True),
            ("all_reduce", "torch", True, False, 5 * 4, ended, True),  # ended by its future alone
        ], calls
        # the direct=False subscriber heard tplab's collectives only: 3 all-reduces, start and end
        assert [kind for kind, _ in tplab_only].count("start") == 3
        assert {op for _, op in tplab_only} == {"all_reduce"}
        assert len(warned) == 1 and "a subscriber with a bug" in warned[0]


def test_removed_subscribers_hear_nothing_and_torch_distributed_is_restored():
    from tplab.comm import hooks

    original, seen = dist.all_reduce, []
    quiet_one = hooks.subscribe(lambda kind, call: None, direct=False)
    assert dist.all_reduce is original               # tplab-only subscribers wrap nothing
    loud = hooks.subscribe(lambda kind, call: seen.append(kind))
    assert dist.all_reduce is not original
    call = hooks.begin("all_reduce", 8, "shm")
    hooks.end(call)
    hooks.end(call)                                  # a second end is not reported twice
    loud.remove()
    loud.remove()                                    # removing twice is harmless
    assert dist.all_reduce is original and seen == ["start", "end"]
    assert hooks.begin("all_reduce", 8, "shm") is not None  # quiet_one still listens
    quiet_one.remove()
    assert hooks.begin("all_reduce", 8, "shm") is None and not hooks.subscribers


def _clocked():
    x = torch.ones(576)
    with comm.AllReduceClock() as clock:
        comm.all_reduce(x)
        dist.all_reduce(x)                          # straight to torch: not tplab's all-reduce
        comm.wait(comm.all_reduce(x, async_op=True))  # in the background: no time spent inside
        comm.ring_all_reduce(x)                     # lesson 01's ring: not the layers' all-reduce
        comm.all_reduce(x)
    comm.all_reduce(x)                              # after the block
    return len(clock.durations), float(x[0])


def test_all_reduce_clock_times_tplab_blocking_all_reduces_only():
    assert tplab.launch(_clocked, 2) == [(2, 2.0**6)] * 2  # 6 all-reduces ran, 2 were timed


def _traced_from_another_thread():
    import threading

    with comm.trace() as t:
        helper = threading.Thread(target=comm.all_reduce, args=(torch.ones(3),))
        helper.start()
        helper.join()
    return t.count("all_reduce")


def test_trace_counts_the_calls_of_every_thread_of_the_rank():
    assert tplab.launch(_traced_from_another_thread, 1) == [1]


def _every_route():
    """One all-reduce by each route a learner could take to torch's, traced; what was counted,
    and whether everything was put back afterwards."""
    from torch._C._distributed_c10d import ProcessGroup
    from torch.distributed import distributed_c10d as c10d

    from tplab.comm import hooks

    bound_early, method = dist.all_reduce, vars(ProcessGroup)["allreduce"]
    x, counted = torch.ones(4), {}
    routes = {"distributed_c10d": lambda: c10d.all_reduce(x),
              "bound before the trace": lambda: bound_early(x),
              "__wrapped__": lambda: dist.all_reduce.__wrapped__(x),
              "process group method": lambda: dist.group.WORLD.allreduce([x]).wait(),
              "broadcast_object_list (its inner broadcasts once)":
                  lambda: dist.broadcast_object_list([1], src=0),
              "tplab.comm.all_reduce (reports itself once)": lambda: comm.all_reduce(x)}
    for name, route in routes.items():
        with comm.trace() as t:
            route()
        counted[name] = t.count()
    with comm.trace() as t:
        try:
            with hooks.quiet():
                dist.all_reduce(x)
            refused = False
        except RuntimeError as e:
            refused = "tplab's own" in str(e)
    restored = (dist.all_reduce is bound_early and c10d.all_reduce is bound_early
                and vars(ProcessGroup)["allreduce"] is method)
    return counted, refused and t.count() == 0, restored


def test_the_tracer_sees_every_route_to_torch_and_learners_cannot_quiet_it():
    for counted, refused, restored in tplab.launch(_every_route, 2):
        assert counted == {name: 1 for name in counted}, counted
        assert refused and restored


def test_quiet_is_refused_outside_tplab():
    from tplab.comm import hooks

    with pytest.raises(RuntimeError, match="tplab's own"):
        with hooks.quiet():
            pass
    assert hooks._state.quiet == 0

"""torch.distributed.pipelining on the same ranks: it runs tplab's orders, gives the same loss
and gradients as tplab and one process, and a stuck step ends at the launch deadline."""
from __future__ import annotations

import time

import pytest
import torch
import torch.distributed as dist

import tplab
from tplab.pp import schedule
from tplab.pp.builtin import TorchPipeline, compare_worker, reference_step, torch_order_worker
from tplab.pp.workloads import cut, mlp


@pytest.mark.parametrize("name,p,m", [("gpipe", 2, 1), ("gpipe", 4, 3), ("1f1b", 2, 4),
                                      ("1f1b", 3, 5), ("1f1b", 4, 6)])
def test_torch_executes_tplabs_order(name, p, m):
    executed = tplab.launch(torch_order_worker, p, name, m, backend="gloo", timeout=30)
    for rank in range(p):
        assert executed[rank] == schedule(name, p, m, rank), f"rank {rank}"
    # the last stage starts with F0 (torch 2.13's 1F1B pipeline_order lists F1..Fm there)
    assert str(executed[-1][0]) == "F0"
    if name == "1f1b":
        assert [str(a) for a in executed[-1]] == [f"{k}{i}" for i in range(m) for k in "FB"]


@pytest.mark.parametrize("name,p,m", [("1f1b", 2, 4), ("gpipe", 4, 8), ("1f1b", 4, 4)])
def test_same_loss_and_gradients_as_tplab_and_one_process(name, p, m):
    got = tplab.launch(compare_worker, p, name, m, 2, backend="gloo", timeout=60)
    loss, grads = reference_step(p)
    for impl in ("tplab", "torch"):
        assert got[-1][impl]["loss"] == pytest.approx(loss, rel=1e-5)
        assert all(got[r][impl]["loss"] is None for r in range(p - 1))
        for rank in range(p):
            assert got[rank][impl]["grads"].keys() == grads[rank].keys()
            for k, g in grads[rank].items():
                torch.testing.assert_close(got[rank][impl]["grads"][k], g, rtol=1e-5, atol=1e-6)
        assert [len(s) for s in got[0][impl]["events"]]  # both timelines recorded
    for rank in range(p):
        assert got[rank]["torch"]["order"] == got[rank]["tplab"]["order"]


def test_gradients_really_differ_without_the_pipeline():
    """The comparison above can fail: a different micro-batch count changes nothing, a
    different seed changes everything."""
    loss, grads = reference_step(2)
    other_loss, other = reference_step(2, seed=1)
    assert other_loss != pytest.approx(loss, rel=1e-3)
    assert not torch.allclose(other[0]["0.0.weight"], grads[0]["0.0.weight"])


def one_f_one_b_too_few(m):
    stage = cut(mlp(2, 8), 2)[dist.get_rank()]
    TorchPipeline(stage, "1f1b", m, lambda out, y: out.sum())


def test_torch_1f1b_refuses_fewer_micro_batches_than_stages():
    with pytest.raises(tplab.WorkerError, match="must be greater than"):
        tplab.launch(one_f_one_b_too_few, 2, 1, backend="gloo", timeout=30)


def last_rank_never_steps():
    p, rank = dist.get_world_size(), dist.get_rank()
    pipe = TorchPipeline(cut(mlp(p, 8), p)[rank], "1f1b", 2, lambda out, y: out.sum())
    if rank == p - 1:
        time.sleep(60)  # a peer that never answers: rank 0 waits in torch's receive
    pipe.step(torch.zeros(4, 8), torch.zeros(4, 8))


def test_a_stuck_torch_step_ends_at_the_deadline_naming_the_ranks(timed_out):
    error = timed_out(last_rank_never_steps, 2, backend="gloo", timeout=5)
    report = str(error)
    assert error.stuck == [0, 1] and error.waiting == [0], report

"""The machinery of exercise 08's checks: each check fails on the stub, passes the solution,
gives nothing for the bank's own fix (switched off), names the slip, and the numeric items' usual
slips fall outside their tolerances. The ranks are real (gloo, forked: well under a second a
launch); the graded runs are in test_course_grading and test_wrong_answers."""
import time

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from tplab.checks import lesson08
from tplab.interview import by_id
from tplab.interview.bugs import fixed_data_parallel_gradients, fixed_pass_right


def data_parallel_gradients(model, x, y):      # the solution's
    rows = torch.tensor([float(len(x))])
    dist.all_reduce(rows)
    loss = F.mse_loss(model(x), y) * len(x) / rows.item()
    grads = torch.autograd.grad(loss, list(model.parameters()))
    for g in grads:
        dist.all_reduce(g)
    return list(grads)


def stub(*args):
    raise NotImplementedError("exercise ex08_data_parallel: write your code here")


def test_data_parallel_passes_the_solution_on_uneven_shards():
    assert lesson08.shard_rows(3) == [3, 3, 2]
    run = lesson08.check_data_parallel(data_parallel_gradients, {})
    assert set(run["results"]) == {2, 3} and len(run["results"][3]) == 3
    assert "<= 1e-6" in lesson08.dp_table(run)


def test_data_parallel_stub_is_not_attempted_and_the_bank_fix_scores_zero():
    with pytest.raises(NotImplementedError, match="write your code here"):
        lesson08.check_data_parallel(stub, {})

    def borrowed(model, x, y):
        return fixed_data_parallel_gradients(model, x, y)

    with pytest.raises(AssertionError, match="the bank's model answer"):
        lesson08.check_data_parallel(borrowed, globals())


def test_data_parallel_names_the_equal_shard_average():
    def by_world(model, x, y):
        grads = torch.autograd.grad(F.mse_loss(model(x), y), list(model.parameters()))
        for g in grads:
            dist.all_reduce(g)
            g /= dist.get_world_size()
        return list(grads)

    slip = r"(?s)3 ranks \(rows 3\+3\+2\).*mean of the ranks' mean gradients"
    with pytest.raises(AssertionError, match=slip):
        lesson08.check_data_parallel(by_world, {})


def test_model_parallel_solution_passes_and_the_article_fails():
    def model_parallel_gradients(stage, x, y):
        if dist.get_rank() == 0:
            hidden = stage(x)
            dist.send(hidden.detach(), dst=1)
            grad = torch.empty_like(hidden)
            dist.recv(grad, src=1)
            hidden.backward(grad)
        else:
            hidden = torch.empty(len(x), stage.in_features)
            dist.recv(hidden, src=0)
            hidden.requires_grad_()
            F.mse_loss(stage(hidden), y).backward()
            dist.send(hidden.grad, dst=0)
        return [p.grad for p in stage.parameters()]

    run = lesson08.check_model_parallel(model_parallel_gradients, {})
    assert "forward output (8, 1)" in lesson08.mp_table(run)

    def article(stage, x, y):
        return stage.gradient(stage(x), x)

    with pytest.raises(AssertionError, match="Hint"):
        lesson08.check_model_parallel(article, {})


def test_deadlock_fails_by_the_deadline_and_the_fix_passes():
    def send_first(t):
        rank, world = dist.get_rank(), dist.get_world_size()
        got = torch.empty_like(t)
        dist.send(t, dst=(rank + 1) % world)
        dist.recv(got, src=(rank - 1) % world)
        return got

    start = time.monotonic()
    with pytest.raises(AssertionError, match="did not finish within the 2 s deadline"):
        lesson08.check_pass_right(send_first, {}, timeout=2)
    assert time.monotonic() - start < 8

    def even_odd(t):
        rank, world = dist.get_rank(), dist.get_world_size()
        got = torch.empty_like(t)
        if rank % 2 == 0:
            dist.send(t, dst=(rank + 1) % world)
            dist.recv(got, src=(rank - 1) % world)
        else:
            dist.recv(got, src=(rank - 1) % world)
            dist.send(t, dst=(rank + 1) % world)
        return got

    assert [t[0].item() for t in lesson08.check_pass_right(even_odd, {})[3]] == [2, 0, 1]
    with pytest.raises(AssertionError, match="bank's model answer"):
        lesson08.check_pass_right(lambda t: fixed_pass_right(t), globals())


# each numeric item's usual slips, as a learner would compute them (n = 8 GPUs)
SLIPS = {
    "dp-grad-all-reduce": {"(n-1)/n: the 2 forgotten": 7 / 8 * 14e9 / 370e9 * 1e3,
                           "2N": 2 * 14e9 / 370e9 * 1e3, "N": 14e9 / 370e9 * 1e3},
    "dp-zero3-70b": {"GiB": 16 * 68.98e9 / 8 / 2**30, "K = 8 (no master weights)":
                     12 * 68.98e9 / 8 / 1e9, "ZeRO-1's formula": (4 + 12 / 8) * 68.98e9 / 1e9,
                     "fp32 weights and gradients": 20 * 68.98e9 / 8 / 1e9},
    "tp-decode-comm": {"one all-reduce per layer": 80 * (3.6 + 14 * 0.47) * 1e-3,
                       "four (training)": 320 * (3.6 + 14 * 0.47) * 1e-3,
                       "(n-1) steps, not 2(n-1)": 160 * (3.6 + 7 * 0.47) * 1e-3,
                       "NCCL's start forgotten": 160 * 14 * 0.47e-3},
    "pp-bubble": {"(p-1)/m": 3 / 8, "(p-1)/(m+p)": 3 / 12, "p/(m+p)": 4 / 12},
    "mt-kv-batch": {"K without V": 80 * 8 * 128 * 2 * 16 * 4096 / 8 / 1e9,
                    "GiB": 2 * 80 * 8 * 128 * 2 * 16 * 4096 / 8 / 2**30,
                    "fp32": 2 * 80 * 8 * 128 * 4 * 16 * 4096 / 8 / 1e9,
                    "not split by TP": 2 * 80 * 8 * 128 * 2 * 16 * 4096 / 1e9},
    "mt-decode-ms": {"fp32 weights": 68.98e9 * 4 / 8 / (3.35e12 * 0.685) * 1e3 + 1.64,
                     "peak bandwidth": 68.98e9 * 2 / 8 / 3.35e12 * 1e3 + 1.64,
                     "all-reduces forgotten": 68.98e9 * 2 / 8 / (3.35e12 * 0.685) * 1e3},
}


def test_numbers_stub_fails_the_answers_pass_and_every_slip_is_rejected():
    assert set(SLIPS) == set(lesson08.NUMBERS)
    with pytest.raises(AssertionError, match="no answer yet for dp-grad-all-reduce"):
        lesson08.check_numbers({i: None for i in lesson08.NUMBERS})
    right = {i: by_id(i).model_answer() for i in lesson08.NUMBERS}
    assert lesson08.check_numbers(right).correct == 6
    for item_id, slips in SLIPS.items():
        for slip, value in slips.items():
            assert not by_id(item_id).check(value), f"{item_id}: the slip '{slip}' is accepted"
            with pytest.raises(AssertionError, match=f"1 of 6 answers are wrong:\n- {item_id}"):
                lesson08.check_numbers({**right, item_id: value})
    with pytest.raises(AssertionError, match="not in this interview"):
        lesson08.check_numbers({**right, "pp-bubble-ideal": 0.2})


def test_choices_pass_and_a_wrong_pick_gets_its_reason_not_the_answer():
    right = {i: by_id(i).correct for i in lesson08.CHOICES}
    assert len(set(right.values())) >= 2, "one letter throughout must not pass"
    assert lesson08.check_choices(right).correct == 6
    with pytest.raises(AssertionError) as caught:
        lesson08.check_choices({**right, "tp-f-g": "A", "coll-halves": "z"})
    message = str(caught.value)
    assert "tp-f-g: you chose 'A': Wrong: that is g." in message
    assert "not one of the options A, B, C, D" in message and "Right" not in message

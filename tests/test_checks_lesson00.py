"""Exercise 00.2's check: a total summed in floating point is rejected with a hint that names
the dtype, whether it was float32 (torch's default: the likeliest slip) or float64."""
import pytest
import torch

from tplab.checks.lesson00 import S, check_partial_and_total

N = 1_000_003


def _one_rank(total):
    return [[(S(N), total, {})]]  # one rank: its partial is the whole sum, no collective


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_floating_point_total_is_close_and_the_hint_says_so(dtype):
    total = int(torch.tensor([float(S(N))], dtype=dtype).item())
    assert total != S(N)
    with pytest.raises(AssertionError, match="lost digits in floating point.*int64"):
        check_partial_and_total(1, _one_rank(total), (N,))


@pytest.mark.parametrize("total", [S(N) // 2, S(N - 1), S(N) + 1])
def test_other_wrong_totals_get_the_collective_hint(total):
    with pytest.raises(AssertionError) as info:
        check_partial_and_total(1, _one_rank(total), (N,))
    assert "lost digits" not in str(info.value)  # off by one or a missing share: not rounding
    assert "with the collective" in str(info.value)


def test_the_exact_total_passes():
    check_partial_and_total(1, _one_rank(S(N)), (N,))


# ---- what came through the communication: the backend's name, the collective's result ------

def _card_asked():
    import os

    import torch.distributed as dist
    return {"rank": dist.get_rank(), "world_size": dist.get_world_size(),
            "backend": dist.get_backend(), "local_rank": int(os.environ["LOCAL_RANK"])}


def _card_typed_in():
    return {**_card_asked(), "backend": "gloo"}


def test_a_backend_typed_in_fails_and_one_asked_for_passes():
    import tplab
    from tplab.checks.lesson00 import card_on_machines, check_rank_cards

    check_rank_cards(tplab.launch(card_on_machines, 2, _card_asked, 2), 2, 2)
    with pytest.raises(AssertionError, match="'backend' is 'gloo'.*renamed"):
        check_rank_cards(tplab.launch(card_on_machines, 2, _card_typed_in, 2), 2, 2)


def _total_by_all_reduce(N):
    import torch.distributed as dist
    rank, world = dist.get_rank(), dist.get_world_size()
    partial = sum(k * k for k in range(rank, N, world))
    t = torch.tensor([partial], dtype=torch.int64)
    dist.all_reduce(t)
    return partial, int(t.item())


def _total_by_formula_beside_a_decoy(N):
    partial, _ = _total_by_all_reduce(N)
    return partial, S(N)


def test_a_total_not_taken_from_the_collective_fails():
    import tplab
    from tplab.checks.lesson00 import traced_pairs

    Ns = (10, 101)
    check_partial_and_total(2, tplab.launch(traced_pairs, 2, _total_by_all_reduce, Ns, "sum"), Ns)
    got = tplab.launch(traced_pairs, 2, _total_by_formula_beside_a_decoy, Ns, "sum")
    with pytest.raises(AssertionError, match="second run.*added 7919"):
        check_partial_and_total(2, got, Ns)

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

"""tplab.comm.cost: the α–β formulas on hand-computed values, and the fit recovering α and β."""
import math

import pytest

from tplab.comm import cost

ALPHA, BETA = 20e-6, 1e-9  # 20 µs per message, 1 GB/s


def test_ring_all_reduce_by_hand():
    # 4 ranks, 1 MB: 2·3 = 6 latencies, 2·3/4 = 1.5 MB through each link
    assert cost.ring_all_reduce_time(1_000_000, 4, ALPHA, BETA) == pytest.approx(6 * 20e-6 + 1.5e-3)
    # 2 ranks: 2α + N·β
    assert cost.ring_all_reduce_time(2304, 2, ALPHA, BETA) == pytest.approx(40e-6 + 2.304e-6)
    # 8 ranks, 64 MiB, α = 0: 2·7/8 = 1.75 × the bytes
    expected = 1.75 * (64 << 20) * 1e-9
    assert cost.ring_all_reduce_time(64 << 20, 8, 0.0, BETA) == pytest.approx(expected)
    assert cost.ring_all_reduce_time(10**9, 1, ALPHA, BETA) == 0.0  # one rank: nothing to send


def test_all_gather_and_reduce_scatter_by_hand():
    for fn in (cost.all_gather_time, cost.reduce_scatter_time):
        assert fn(1_000_000, 4, ALPHA, BETA) == pytest.approx(3 * 20e-6 + 0.75e-3)
        assert fn(4096, 2, ALPHA, BETA) == pytest.approx(20e-6 + 2048e-9)
        assert fn(123, 1, ALPHA, BETA) == 0.0
    # an all-reduce costs exactly a reduce-scatter plus an all-gather
    for n in (2, 3, 8):
        total = (cost.reduce_scatter_time(5e6, n, ALPHA, BETA)
                 + cost.all_gather_time(5e6, n, ALPHA, BETA))
        assert cost.ring_all_reduce_time(5e6, n, ALPHA, BETA) == pytest.approx(total)


def test_point_to_point_and_crossover():
    assert cost.point_to_point_time(1000, 2, ALPHA, BETA) == pytest.approx(20e-6 + 1e-6)
    assert cost.crossover_bytes(ALPHA, BETA) == pytest.approx(20_000)  # 20 µs at 1 GB/s
    n_star = cost.crossover_bytes(ALPHA, BETA)
    assert cost.point_to_point_time(n_star, 2, ALPHA, BETA) == pytest.approx(2 * ALPHA)


@pytest.mark.parametrize("bad", [(-1, 2), (10, 0), (10, 1.5), (10, True)])
def test_rejects_nonsense(bad):
    nbytes, n = bad
    with pytest.raises(ValueError):
        cost.ring_all_reduce_time(nbytes, n, ALPHA, BETA)


SIZES = [4 * 4**k for k in range(13)]  # 4 B ... 64 MiB, as lesson 01 measures


@pytest.mark.parametrize("model,n", [(cost.point_to_point_time, 2), (cost.ring_all_reduce_time, 2),
                                     (cost.ring_all_reduce_time, 4), (cost.all_gather_time, 3)])
@pytest.mark.parametrize("relative", [True, False])
def test_fit_recovers_alpha_beta_exactly(model, n, relative):
    times = [model(s, n, ALPHA, BETA) for s in SIZES]
    alpha, beta = cost.fit_alpha_beta(SIZES, times, model=model, n=n, relative=relative)
    assert alpha == pytest.approx(ALPHA, rel=1e-9)
    assert beta == pytest.approx(BETA, rel=1e-9)


def test_fit_on_two_points_is_the_line_through_them():
    alpha, beta = cost.fit_alpha_beta([0, 1000], [5e-6, 6e-6])
    assert (alpha, beta) == (pytest.approx(5e-6), pytest.approx(1e-9))


def test_fit_weighs_relative_error_by_default():
    # one size 10x off: the relative fit keeps α from the small sizes, the plain fit does not
    times = [cost.point_to_point_time(s, 2, ALPHA, BETA) for s in SIZES]
    times[-1] *= 10
    rel_alpha, _ = cost.fit_alpha_beta(SIZES, times)
    abs_alpha, _ = cost.fit_alpha_beta(SIZES, times, relative=False)
    assert abs(rel_alpha - ALPHA) < abs(abs_alpha - ALPHA)


def test_fit_never_returns_negative_parameters():
    # times that fall with size would need β < 0: clamped to 0, α alone
    alpha, beta = cost.fit_alpha_beta([1, 10, 100], [3e-6, 2e-6, 1e-6])
    assert alpha > 0 and beta == 0.0
    # times that grow faster than size would need α < 0: clamped to 0, β alone
    alpha, beta = cost.fit_alpha_beta([100, 1000, 10000], [1e-7, 1e-6, 1e-5 * 1.01], relative=False)
    assert alpha == 0.0 and beta > 0 and math.isfinite(beta)


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError):
        cost.fit_alpha_beta([1, 2], [1e-6])
    with pytest.raises(ValueError):
        cost.fit_alpha_beta([1000], [1e-6])
    with pytest.raises(ValueError):
        cost.fit_alpha_beta([1000, 1000], [1e-6, 2e-6])  # one size: α and β inseparable

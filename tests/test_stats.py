"""attnbook.stats against scipy, statsmodels and hand computations: permutation p-values (exact and
sequential), the draws a family needs, Holm / Benjamini–Hochberg, the pooled rank test, bootstrap
intervals (iid and moving-block) and the detectable effect; every documented error path."""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import combinations, product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from attnbook import stats
from attnbook.errors import InvalidInputError, OutOfRangeError


def test_permutation_p_by_hand():
    assert stats.permutation_p(3.0, [1.0, 2.0, 3.0, 4.0]) == 3 / 5  # 3 and 4 reach it, plus the observed
    assert stats.permutation_p(9.0, [1.0, 2.0]) == 1 / 3  # never 0
    with pytest.raises(InvalidInputError, match="null"):
        stats.permutation_p(1.0, [])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=4, max_size=7), st.integers(2, 3))
def test_exact_test_equals_scipy_permutation_test(values, k):
    """Choosing k of n units, statistic = the chosen units' sum: our exact p over every other k-set equals
    scipy's exhaustive independent-samples permutation test (alternative 'greater')."""
    k = min(k, len(values) - 2)  # scipy wants two or more units on each side
    x = np.asarray(values, dtype=float)
    chosen = tuple(range(k))
    effect = x[list(chosen)].sum()
    null = [x[list(s)].sum() for s in combinations(range(len(x)), k) if s != chosen]
    ours = stats.exact_test(effect, null)
    ref = sps.permutation_test((x[:k], x[k:]), lambda a, b, axis: a.sum(axis=axis), permutation_type="independent",
                               alternative="greater", n_resamples=np.inf, vectorized=True)
    assert ours.exact and ours.space == math.comb(len(x), k)
    assert math.isclose(ours.p, ref.pvalue, rel_tol=1e-12)
    assert ours.smallest_p == 1 / math.comb(len(x), k)


def test_sequential_test_stops_after_h_exceedances():
    """Besag–Clifford: a clear null stops at the h-th exceedance with p = h / l."""
    values = iter([5.0, 0.0, 6.0, 7.0] + [9.0] * 100)
    r = stats.sequential_test(4.0, values, max_draws=1000, stop_after=3)
    assert r.stopped and r.draws == 4 and r.p == 3 / 4 and not r.exact
    assert r.smallest_p == 1 / 1001


def test_sequential_test_runs_to_the_end_on_a_clear_effect():
    r = stats.sequential_test(1000.0, (float(v) for v in range(1000)), max_draws=99, stop_after=10)
    assert not r.stopped and r.draws == 99 and r.p == 1 / 100 == r.smallest_p
    r2 = stats.sequential_test(50.5, (float(v) for v in range(1000)), max_draws=99, stop_after=100)
    assert r2.p == (1 + 48) / 100  # the draws are 0 … 98: 51 … 98 reach it
    with pytest.raises(InvalidInputError, match="draws"):
        stats.sequential_test(1.0, [0.0, 0.0], max_draws=5)


@given(st.floats(0.001, 0.2), st.integers(1, 30))
def test_draws_for_is_the_fewest_that_reach_half_the_strictest_threshold(alpha, m):
    n = stats.draws_for(alpha, m)
    assert 1 / (1 + n) <= alpha / (2 * m) + 1e-12
    assert n == 1 or 1 / n > alpha / (2 * m) - 1e-12
    assert stats.can_decide(n + 1, n, alpha, m)


def test_smallest_p_and_can_decide():
    assert stats.smallest_p(28) == 1 / 28  # chapter 2's pairs of 8 heads, enumerated
    assert stats.smallest_p(10_000, 999) == 1 / 1000
    assert not stats.can_decide(16, None, 0.05, 1)  # one head of 16: 1/16 > 0.05
    assert stats.can_decide(120, None, 0.05, 3)  # all pairs of 16 heads: 1/120 < 0.05/3
    with pytest.raises(InvalidInputError, match="space"):
        stats.smallest_p(1)


def test_holm_and_bh_by_hand():
    p = [0.01, 0.04, 0.03, 0.5]
    # Holm: sorted 0.01, 0.03, 0.04, 0.5 → 4·0.01, 3·0.03, 2·0.04 (monotone), 1·0.5
    assert np.allclose(stats.holm(p), [0.04, 0.09, 0.09, 0.5])
    # BH: sorted ranks 1..4: 0.01·4/1 = 0.04, 0.03·4/2 = 0.06, 0.04·4/3 = 0.0533 → min from the top
    assert np.allclose(stats.bh(p), [0.04, 0.0533333, 0.0533333, 0.5])
    assert stats.holm([]) == []
    with pytest.raises(InvalidInputError, match="p_values"):
        stats.holm([0.1, 1.5])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(2, 6), st.integers(1, 6)), min_size=1, max_size=3))
def test_combined_rank_test_equals_brute_force(strata):
    ns = [n for n, _ in strata]
    ks = [min(k, n) for n, k in strata]
    p, smallest = stats.combined_rank_test(ks, ns)
    observed = sum(Fraction(k, n) for k, n in zip(ks, ns))
    hits = sum(sum(Fraction(r, n) for r, n in zip(ranks, ns)) <= observed for ranks in product(*(range(1, n + 1) for n in ns)))
    assert math.isclose(p, hits / math.prod(ns), rel_tol=1e-12)
    assert math.isclose(smallest, 1 / math.prod(ns))


def test_combined_rank_test_one_stratum_is_the_exact_p_and_errors():
    assert stats.combined_rank_test([3], [28])[0] == pytest.approx(3 / 28)
    with pytest.raises(InvalidInputError):
        stats.combined_rank_test([5], [4])
    with pytest.raises(InvalidInputError):
        stats.combined_rank_test([], [])


def test_bootstrap_interval_is_scipys_and_covers_the_mean():
    x = np.random.default_rng(0).normal(1.0, 1.0, 200)
    low, high = stats.bootstrap_interval(x, seed=3)
    ref = sps.bootstrap((x,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(3))
    assert (low, high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    assert low < x.mean() < high and 0.1 < high - low < 0.5  # ≈ 2·1.96/√200 = 0.28
    assert all(math.isnan(v) for v in stats.bootstrap_interval([2.0, 2.0, 2.0]))
    assert stats.bootstrap_se([1.0]) == 0.0
    assert stats.bootstrap_se(x, seed=3) == pytest.approx(1 / math.sqrt(200), rel=0.2)
    with pytest.raises(InvalidInputError, match="units"):
        stats.bootstrap_interval([1.0, float("nan")])


def test_block_bootstrap_widens_for_an_autocorrelated_series():
    """AR(1) with φ = 0.9: the iid bootstrap (block 1) understates the mean's spread; blocks of 50 do not."""
    rng = np.random.default_rng(0)
    e = rng.normal(size=2000)
    x = np.zeros(2000)
    for t in range(1, 2000):
        x[t] = 0.9 * x[t - 1] + e[t]
    lo1, hi1 = stats.block_bootstrap_interval(x, 1)
    lo50, hi50 = stats.block_bootstrap_interval(x, 50)
    assert (hi50 - lo50) > 2.5 * (hi1 - lo1)  # the long-run sd is √((1+φ)/(1−φ)) ≈ 4.4× the iid one
    white = rng.normal(size=2000)
    a, b = stats.block_bootstrap_interval(white, 1), stats.bootstrap_interval(white, method="percentile")
    assert (a[1] - a[0]) == pytest.approx(b[1] - b[0], rel=0.15)
    with pytest.raises(OutOfRangeError, match="block"):
        stats.block_bootstrap_interval(x[:10], 11)


def test_detectable_effect_by_hand():
    null = np.arange(1, 101, dtype=float)  # 1 … 100
    # 1 − 0.05/1 = 0.95: the 95th smallest of 100 is 95
    assert stats.detectable_effect(null, 0.0) == 95.0
    assert stats.detectable_effect(null, 10.0, alpha=0.05, family=5) == 99.0 + 8.4  # 1 − 0.01 → the 99th
    with pytest.raises(InvalidInputError, match="null"):
        stats.detectable_effect([], 1.0)


def test_permutation_result_quantile_is_nearest_rank():
    r = stats.exact_test(0.0, [1.0, 2.0, 3.0, 4.0])
    assert r.quantile(0.5) == 2.0 and r.quantile(1.0) == 4.0

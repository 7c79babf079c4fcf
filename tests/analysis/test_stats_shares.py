"""The likelihood ratios behind the sequential judge are exact, and each is a fair bet under the null."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, hypergeom, nchypergeom_fisher

from analysis.stats.eprocess import (
    BlendedPrior,
    MixturePrior,
    RatioGrid,
    confidence_bounds,
    log_e_above,
    log_e_below,
)
from analysis.stats.shares import binomial_share_loglr, noncentral_share_loglr

GRID = RatioGrid(step=math.log(2) / 4, half_width=12)


def test_noncentral_ratio_matches_scipy_fisher_noncentral_hypergeometric() -> None:
    rng = np.random.default_rng(1)
    canary_requests = rng.integers(1, 300, 40).astype(float)
    baseline_requests = rng.integers(1, 2000, 40).astype(float)
    slow = np.array([rng.integers(0, a + b + 1) for a, b in zip(canary_requests, baseline_requests, strict=True)],
                    dtype=float)
    low = np.maximum(0, slow - baseline_requests)
    high = np.minimum(slow, canary_requests)
    canary_slow = np.floor(low + (high - low) * rng.random(40))
    ours = noncentral_share_loglr(canary_slow, canary_requests, baseline_requests, slow, GRID.log_ratios)
    for i in range(40):
        total = canary_requests[i] + baseline_requests[i]
        expected = [nchypergeom_fisher.logpmf(canary_slow[i], total, canary_requests[i], slow[i], math.exp(lr))
                    - hypergeom.logpmf(canary_slow[i], total, canary_requests[i], slow[i])
                    for lr in GRID.log_ratios]
        # scipy's own routine loses precision (and underflows) far in the tails; compare where it is exact.
        usable = np.array(expected) > -50
        assert ours[i][usable] == pytest.approx(np.array(expected)[usable], abs=1e-7)


def test_noncentral_ratio_is_a_fair_bet_when_both_arms_are_alike() -> None:
    # E[LR] = 1 under the conditional null, for every alternative: sum over the whole support.
    nc, nb, slow = 40, 300, 170
    support = np.arange(max(0, slow - nb), min(slow, nc) + 1, dtype=float)
    lr = np.exp(noncentral_share_loglr(support, np.full(support.size, nc), np.full(support.size, nb),
                                       np.full(support.size, slow), GRID.log_ratios))
    null = hypergeom.pmf(support, nc + nb, nc, slow)
    assert null @ lr == pytest.approx(np.ones(GRID.log_ratios.size), rel=1e-9)


def test_binomial_share_ratio_is_the_binomial_likelihood_ratio() -> None:
    events, canary, share, theta = 12.0, 5.0, 0.2, 3.0
    q = theta * share / (theta * share + 1 - share)
    expected = binom.logpmf(canary, events, q) - binom.logpmf(canary, events, share)
    ours = binomial_share_loglr(np.array([canary]), np.array([events]), np.array([share]), np.array([math.log(theta)]))
    assert ours[0, 0] == pytest.approx(expected)


def test_binomial_share_ratio_ignores_intervals_without_traffic_in_an_arm() -> None:
    ours = binomial_share_loglr(np.array([0.0, 3.0]), np.array([0.0, 3.0]), np.array([0.1, 1.0]), GRID.log_ratios)
    assert np.all(ours == 0.0)


def test_mixture_e_value_has_expectation_at_most_one_under_the_null() -> None:
    # One interval, 30 errors, canary share 0.1: average the mixture over the exact null distribution.
    events, share = 30, 0.1
    counts = np.arange(events + 1, dtype=float)
    rows = binomial_share_loglr(counts, np.full(counts.size, events), np.full(counts.size, share), GRID.log_ratios)
    e_up = np.exp(log_e_above(rows, GRID.one, MixturePrior(math.log(1.8), 0.4), GRID))
    assert binom.pmf(counts, events, share) @ e_up == pytest.approx(1.0, abs=1e-9)


def test_a_blended_prior_is_a_probability_and_its_mixture_a_fair_bet() -> None:
    narrow, wide = MixturePrior(math.log(2.0), 0.1), MixturePrior(math.log(5.0), 1.0)
    blended = BlendedPrior(((0.7, narrow), (0.3, wide)))
    weights = np.exp(blended.log_weights(GRID.step, 12))
    assert weights.sum() == pytest.approx(1.0)
    expected = 0.7 * np.exp(narrow.log_weights(GRID.step, 12)) + 0.3 * np.exp(wide.log_weights(GRID.step, 12))
    assert weights == pytest.approx(expected)
    events, share = 30, 0.1
    counts = np.arange(events + 1, dtype=float)
    rows = binomial_share_loglr(counts, np.full(counts.size, events), np.full(counts.size, share), GRID.log_ratios)
    e_up = np.exp(log_e_above(rows, GRID.one, blended, GRID))
    assert binom.pmf(counts, events, share) @ e_up == pytest.approx(1.0, abs=1e-9)


def test_evidence_against_not_worse_grows_only_when_the_canary_is_better() -> None:
    rows_better = binomial_share_loglr(np.array([0.0]), np.array([50.0]), np.array([0.1]), GRID.log_ratios)
    rows_worse = binomial_share_loglr(np.array([20.0]), np.array([50.0]), np.array([0.1]), GRID.log_ratios)
    margin = GRID.index_at_or_below(2.0)
    prior = MixturePrior(math.log(2.0), 0.5)
    assert log_e_below(rows_better, margin, prior, GRID)[0] > math.log(20)
    assert log_e_below(rows_worse, margin, prior, GRID)[0] < 0


def test_margin_is_rounded_down_to_the_grid() -> None:
    assert GRID.ratio(GRID.index_at_or_below(1.5)) == pytest.approx(2 ** 0.5)
    assert GRID.ratio(GRID.index_at_or_below(2.0)) == pytest.approx(2.0)


def test_confidence_bounds_agree_with_the_one_sided_tests_they_invert() -> None:
    rows = binomial_share_loglr(np.array([14.0]), np.array([60.0]), np.array([0.1]), GRID.log_ratios)
    prior_up, prior_down = MixturePrior(math.log(2.0), 0.6), MixturePrior(math.log(2.0), 0.5)
    threshold = math.log(100)
    lower, upper = confidence_bounds(rows[0], prior_up, prior_down, GRID, threshold)
    for j, log_ratio in enumerate(GRID.log_ratios):
        ratio = math.exp(log_ratio)
        rejected_below = log_e_above(rows, j, prior_up, GRID)[0] >= threshold
        rejected_above = log_e_below(rows, j, prior_down, GRID)[0] >= threshold
        assert rejected_below == (ratio <= lower)
        assert rejected_above == (ratio >= upper)
    observed = (14 / 46) / (0.1 / 0.9)
    assert lower < observed < upper

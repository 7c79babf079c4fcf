"""Kayenta's Mann-Whitney classification, on worked examples derived from its documented rules.

Rules (NetflixACAJudge + MannWhitneyClassifier): NoData when an arm is empty; Pass when the data are
identical or hold one value; otherwise a 98% Wilcoxon interval for experiment - control, High when
its lower end exceeds 0.25 x |estimate| and the mean ratio reaches the allowed increase. When the
samples are too small for the level, the interval is the whole range [min x - max y, max x - min y].
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
from scipy.stats import rankdata

from analysis.judges import make_judge
from analysis.judges.mannwhitney import classify
from analysis.model import ArmCounts, Interval, Outcome
from analysis.stats.ranktest import WeightedSample, shift_interval


def sample(*values: float) -> WeightedSample:
    return WeightedSample.of(np.array(values), np.ones(len(values)))


def kayenta(canary: WeightedSample | None, baseline: WeightedSample | None, **overrides: float) -> Outcome:
    rules = {"confidence": 0.98, "tolerance": 0.25, "allowed_increase": 1.0} | overrides
    return classify(canary, baseline, metric="m", confidence=rules["confidence"], tolerance=rules["tolerance"],
                    allowed_increase=rules["allowed_increase"]).outcome


def test_missing_data_in_either_arm_is_nodata() -> None:
    assert kayenta(None, sample(1, 2)) is Outcome.NODATA
    assert kayenta(sample(1, 2), None) is Outcome.NODATA


def test_identical_data_pass() -> None:
    assert kayenta(sample(3, 1, 2), sample(1, 2, 3)) is Outcome.PASS


def test_a_single_value_everywhere_passes() -> None:
    assert kayenta(sample(5, 5, 5), sample(5, 5)) is Outcome.PASS


def test_small_samples_use_the_whole_range_and_a_clear_shift_is_high() -> None:
    # n = 3 per arm cannot reach 98%: interval [11-3, 13-1] = [8, 12]; estimate 10; 8 > 0.25 * 10.
    interval = shift_interval(sample(11, 12, 13), sample(1, 2, 3), 0.98)
    assert (interval.lower, interval.upper, interval.estimate) == (8.0, 12.0, 10.0)
    assert kayenta(sample(11, 12, 13), sample(1, 2, 3)) is Outcome.FAIL


def test_a_shift_small_against_its_estimate_is_within_tolerance() -> None:
    # Every canary value is higher, but the interval starts at 3.5 - 3 = 0.5 while the estimate
    # (median pairwise difference) is 8: 0.5 < 0.25 * 8, so Kayenta passes it.
    interval = shift_interval(sample(3.5, 10, 20), sample(1, 2, 3), 0.98)
    assert interval.lower == 0.5 and interval.estimate == 8.0
    assert kayenta(sample(3.5, 10, 20), sample(1, 2, 3)) is Outcome.PASS


def test_lower_values_pass_because_only_an_increase_is_bad() -> None:
    assert kayenta(sample(1, 2, 3), sample(11, 12, 13)) is Outcome.PASS


def test_a_high_classification_needs_the_mean_ratio_to_reach_the_allowed_increase() -> None:
    # Mean ratio 12 / 2 = 6.
    assert kayenta(sample(11, 12, 13), sample(1, 2, 3), allowed_increase=5.0) is Outcome.FAIL
    assert kayenta(sample(11, 12, 13), sample(1, 2, 3), allowed_increase=7.0) is Outcome.PASS


def test_single_values_per_arm_collapse_to_their_difference() -> None:
    assert kayenta(sample(2, 2), sample(1, 1, 1)) is Outcome.FAIL
    assert kayenta(sample(1, 1), sample(2, 2)) is Outcome.PASS


def brute_force_root(x: np.ndarray, y: np.ndarray, quantile: float, grid: np.ndarray) -> float:
    """R's wdiff on a dense grid of shifts, with plain ranks: the first shift where it is <= 0."""
    nx, ny = x.size, y.size
    for mu in grid:
        ranks = rankdata(np.concatenate((x - mu, y)))
        dz = ranks[:nx].sum() - nx * (nx + 1) / 2 - nx * ny / 2
        _, ties = np.unique(np.concatenate((x - mu, y)), return_counts=True)
        sigma = np.sqrt(nx * ny / 12 * ((nx + ny + 1) - (ties**3 - ties).sum() / ((nx + ny) * (nx + ny - 1))))
        if (dz - 0.5 * np.sign(dz)) / sigma - quantile <= 0:
            return float(mu)
    return float(grid[-1])


def test_interval_matches_r_style_inversion_on_a_dense_grid() -> None:
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(10.8, 1.0, 25), 2)
    y = np.round(rng.normal(10.0, 1.0, 30), 2)
    ours = shift_interval(WeightedSample.of(x, np.ones(x.size)), WeightedSample.of(y, np.ones(y.size)), 0.98)
    z = NormalDist().inv_cdf(0.99)
    grid = np.arange(-3.0, 4.0, 0.0025)
    # The root is a breakpoint; the grid finds the first point past it.
    assert brute_force_root(x, y, z, grid) == pytest.approx(ours.lower, abs=0.003)
    assert brute_force_root(x, y, -z, grid) == pytest.approx(ours.upper, abs=0.003)
    assert brute_force_root(x, y, 0.0, grid) == pytest.approx(ours.estimate, abs=0.003)


def test_weighted_samples_give_the_same_interval_as_repeated_values() -> None:
    values = np.array([0.1, 0.2, 0.3, 0.5])
    repeated_x = np.repeat(values, [3, 5, 4, 2])
    repeated_y = np.repeat(values, [6, 5, 2, 1])
    weighted = shift_interval(WeightedSample.of(values, np.array([3, 5, 4, 2.0])),
                              WeightedSample.of(values, np.array([6, 5, 2, 1.0])), 0.9)
    plain = shift_interval(WeightedSample.of(repeated_x, np.ones(repeated_x.size)),
                           WeightedSample.of(repeated_y, np.ones(repeated_y.size)), 0.9)
    assert weighted == plain


def interval(t: float, base_errors: float, canary_errors: float) -> Interval:
    bounds = (0.1, 0.25, float("inf"))
    return Interval(t, 10.0, ArmCounts(1000, base_errors, tuple(zip(bounds, (500, 990, 1000), strict=True))),
                    ArmCounts(100, canary_errors, tuple(zip(bounds, (50, 99, 100), strict=True))))


def test_judge_waits_for_a_few_intervals_then_fails_a_clearly_worse_error_rate() -> None:
    judge = make_judge("mannwhitney", metrics=("error-rate",))
    history = [interval(10.0 * i, 5, 10) for i in range(1, 8)]
    assert judge.evaluate(history[:2])[0].outcome is Outcome.CONTINUE
    verdict = judge.evaluate(history)[0]
    assert verdict.outcome is Outcome.FAIL
    assert verdict.evidence["mean_ratio"] == pytest.approx(20.0)


def test_judge_passes_equal_latency_histograms() -> None:
    judge = make_judge("mannwhitney", metrics=("latency",))
    assert judge.evaluate([interval(10.0 * i, 5, 0) for i in range(1, 8)])[0].outcome is Outcome.PASS


def test_outcomes_agree_with_evaluate_on_every_prefix() -> None:
    judge = make_judge("mannwhitney")
    history = [interval(10.0 * i, 5, float(i % 3)) for i in range(1, 15)]
    outcomes = judge.outcomes(history)
    first_fail = outcomes.index(Outcome.FAIL) if Outcome.FAIL in outcomes else len(history)
    for looks in range(1, first_fail + 1):
        expected = [v.outcome for v in judge.evaluate(history[:looks])]
        assert (Outcome.FAIL in expected) == (outcomes[looks - 1] is Outcome.FAIL)

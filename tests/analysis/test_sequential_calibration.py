"""Calibration and power of the sequential judge on simulated releases, looking after every interval.

Calibration uses a larger alpha than production (0.05-0.1) so that a judge which peeks unsafely would
be caught with a few hundred releases; the bound allows three standard errors of sampling noise.
"""

from __future__ import annotations

import math

from analysis.judges import make_judge
from analysis.model import Outcome
from analysis.simulate import Incident, Scenario, simulate


def rollback_rate(scenario: Scenario, metrics: tuple[str, ...], alpha: float, releases: int, seed: int) -> float:
    streams = simulate(scenario, releases, seed)
    judge = make_judge("sequential", alpha=alpha, metrics=metrics)
    failed = sum(Outcome.FAIL in judge.outcomes(streams.history(r)) for r in range(releases))
    return failed / releases


def allowed(alpha: float, releases: int) -> float:
    return alpha + 3.0 * math.sqrt(alpha * (1.0 - alpha) / releases)


def test_error_rate_false_rollbacks_stay_below_alpha_with_a_look_every_interval() -> None:
    scenario = Scenario("null", baseline_error_rate=0.02, duration_s=900.0)
    assert rollback_rate(scenario, ("error-rate",), 0.05, 400, seed=11) <= allowed(0.05, 400)


def test_error_rate_stays_calibrated_when_the_split_and_traffic_change_between_intervals() -> None:
    scenario = Scenario("ladder", baseline_error_rate=0.02, duration_s=900.0, rps_swing=10.0,
                        weights=((0.0, 5.0), (200.0, 10.0), (400.0, 25.0), (600.0, 50.0)))
    assert rollback_rate(scenario, ("error-rate",), 0.05, 400, seed=12) <= allowed(0.05, 400)


def test_error_rate_is_not_fooled_by_an_incident_that_hits_both_arms() -> None:
    scenario = Scenario("incident", duration_s=900.0,
                        incident=Incident(start_s=300.0, end_s=500.0, error_rate=0.2, latency_factor=3.0))
    assert rollback_rate(scenario, ("error-rate",), 0.05, 300, seed=13) <= allowed(0.05, 300)


def test_latency_false_rollbacks_stay_below_alpha_with_a_changing_split() -> None:
    scenario = Scenario("ladder", duration_s=600.0, rps=40.0,
                        weights=((0.0, 5.0), (150.0, 10.0), (300.0, 25.0), (450.0, 50.0)))
    assert rollback_rate(scenario, ("latency",), 0.1, 150, seed=14) <= allowed(0.1, 150)


def test_both_metrics_together_stay_below_alpha_with_the_uneven_split() -> None:
    scenario = Scenario("null", baseline_error_rate=0.02, duration_s=600.0)
    assert rollback_rate(scenario, ("error-rate", "latency"), 0.1, 200, seed=16) <= allowed(0.1, 200)


def test_both_metrics_stay_calibrated_at_one_canary_request_per_second() -> None:
    scenario = Scenario("trickle", rps=10.0, baseline_error_rate=0.02)
    assert rollback_rate(scenario, ("error-rate", "latency"), 0.1, 200, seed=15) <= allowed(0.1, 200)


def test_five_times_the_errors_is_rolled_back_within_minutes() -> None:
    streams = simulate(Scenario("5x", canary_error_factor=5.0, duration_s=600.0), 20, seed=21)
    judge = make_judge("sequential", alpha=0.01)
    for release in range(streams.releases):
        outcomes = judge.outcomes(streams.history(release))
        assert Outcome.FAIL in outcomes[:30], f"release {release} not rolled back within 5 minutes"


def test_a_clearly_slower_canary_is_rolled_back_and_blamed_on_latency() -> None:
    streams = simulate(Scenario("+25%", canary_latency_factor=1.25, duration_s=300.0), 10, seed=22)
    judge = make_judge("sequential", alpha=0.01)
    for release in range(streams.releases):
        verdicts = judge.evaluate(streams.history(release))
        by_metric = {v.metric: v.outcome for v in verdicts}
        assert by_metric["latency"] is Outcome.FAIL


def test_an_equal_canary_is_promoted_not_rolled_back() -> None:
    streams = simulate(Scenario("null"), 5, seed=23)
    judge = make_judge("sequential", alpha=0.01)
    for release in range(streams.releases):
        outcomes = judge.outcomes(streams.history(release))
        assert Outcome.FAIL not in outcomes
        assert outcomes[-1] is Outcome.PASS


def test_a_faster_canary_is_never_failed_for_latency() -> None:
    streams = simulate(Scenario("faster", canary_latency_factor=0.7, duration_s=600.0), 10, seed=24)
    judge = make_judge("sequential", alpha=0.01, metrics=("latency",))
    for release in range(streams.releases):
        assert Outcome.FAIL not in judge.outcomes(streams.history(release))

"""Flagger's guard rails: thresholds on the canary alone, rollback when failed checks reach the limit."""

from __future__ import annotations

import pytest

from analysis.judges import make_judge
from analysis.model import ArmCounts, Interval, Outcome

BOUNDS = (0.25, 0.5, 1.0, float("inf"))


def look(t: float, canary_requests: float, canary_errors: float,
         canary_buckets: tuple[float, ...] = (90, 100, 100, 100)) -> Interval:
    scale = canary_requests / 100.0
    buckets = tuple(zip(BOUNDS, (c * scale for c in canary_buckets), strict=True))
    return Interval(t, 10.0, ArmCounts(900, 4, tuple(zip(BOUNDS, (810, 900, 900, 900), strict=True))),
                    ArmCounts(canary_requests, canary_errors, buckets))


def history(error_per_minute: list[float]) -> list[Interval]:
    """Six 10-second looks per minute; each minute's canary errors spread over its looks."""
    looks = []
    for minute, errors in enumerate(error_per_minute):
        for k in range(6):
            looks.append(look(60.0 * minute + 10.0 * (k + 1), 100, errors / 6))
    return looks


def test_nothing_is_judged_before_the_first_one_minute_check() -> None:
    verdict = make_judge("threshold", metrics=("error-rate",)).evaluate(history([60])[:5])[0]
    assert verdict.outcome is Outcome.CONTINUE
    assert "first check" in verdict.reason


def test_five_failed_checks_roll_back_at_the_fifth_minute() -> None:
    judge = make_judge("threshold", metrics=("error-rate",))
    outcomes = judge.outcomes(history([60.0] * 6))  # 10% errors
    assert outcomes.index(Outcome.FAIL) == 5 * 6 - 1  # the look at t = 300 s


def test_a_passing_check_does_not_reset_the_failed_count() -> None:
    judge = make_judge("threshold", metrics=("error-rate",))
    per_minute = [60.0, 60.0, 0.0, 60.0, 60.0, 0.0, 60.0]
    outcomes = judge.outcomes(history(per_minute))
    assert outcomes[3 * 6 - 1] is Outcome.PASS
    assert outcomes.index(Outcome.FAIL) == 7 * 6 - 1


def test_exactly_the_minimum_success_rate_passes() -> None:
    verdict = make_judge("threshold", metrics=("error-rate",)).evaluate(history([6.0]))[0]  # 99.0%
    assert verdict.outcome is Outcome.PASS


def test_p99_is_interpolated_from_buckets_and_compared_with_500_ms() -> None:
    # 98 requests <= 0.5 s, 100 <= 1 s: rank 99 lies halfway, p99 = 750 ms > 500 ms.
    slow = [look(10.0 * k, 100, 0, canary_buckets=(90, 98, 100, 100)) for k in range(1, 7)]
    verdict = make_judge("threshold", metrics=("latency",)).evaluate(slow)[0]
    assert verdict.outcome is Outcome.CONTINUE
    assert verdict.evidence["last_value"] == pytest.approx(750.0)
    fast = [look(10.0 * k, 100, 0) for k in range(1, 7)]
    assert make_judge("threshold", metrics=("latency",)).evaluate(fast)[0].outcome is Outcome.PASS


def test_a_check_window_without_canary_traffic_is_nodata_and_not_counted() -> None:
    silent = [look(10.0 * k, 0, 0, canary_buckets=(0, 0, 0, 0)) for k in range(1, 7)]
    verdict = make_judge("threshold", metrics=("error-rate",)).evaluate(silent)[0]
    assert verdict.outcome is Outcome.NODATA
    assert verdict.evidence["failed_checks"] == 0


def test_failure_threshold_option_changes_the_limit() -> None:
    judge = make_judge("threshold", metrics=("error-rate",), failure_threshold=2)
    assert judge.outcomes(history([60.0] * 3)).index(Outcome.FAIL) == 2 * 6 - 1
    with pytest.raises(ValueError, match="failure_threshold"):
        make_judge("threshold", failure_threshold=2.5)

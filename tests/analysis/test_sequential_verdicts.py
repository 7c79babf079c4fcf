"""What the sequential judge says, and why, in the situations a controller meets."""

from __future__ import annotations

import pytest

from analysis.judges import make_judge
from analysis.model import ArmCounts, Interval, Outcome, combine
from analysis.simulate import Scenario, simulate

BOUNDS = (0.05, 0.1, 0.25, float("inf"))


def interval(t: float, base: tuple[float, float], can: tuple[float, float], weight: float = 10.0,
             base_buckets: tuple[float, ...] = (), can_buckets: tuple[float, ...] = ()) -> Interval:
    return Interval(t, weight,
                    ArmCounts(base[0], base[1], tuple(zip(BOUNDS, base_buckets, strict=False))),
                    ArmCounts(can[0], can[1], tuple(zip(BOUNDS, can_buckets, strict=False))))


def test_no_canary_traffic_is_nodata_with_the_reason_never_a_pass() -> None:
    history = [interval(10.0 * i, (900, 4), (0, 0), base_buckets=(100, 500, 890, 900), can_buckets=(0, 0, 0, 0))
               for i in range(1, 30)]
    verdicts = make_judge("sequential").evaluate(history)
    assert [v.outcome for v in verdicts] == [Outcome.NODATA, Outcome.NODATA]
    assert "canary" in verdicts[0].reason
    assert combine(verdicts).outcome is Outcome.NODATA


def test_an_empty_history_is_nodata() -> None:
    verdicts = make_judge("sequential").evaluate([])
    assert all(v.outcome is Outcome.NODATA for v in verdicts)


def test_a_service_without_errors_holds_then_passes_on_the_error_floor() -> None:
    judge = make_judge("sequential", metrics=("error-rate",))
    early = [interval(10.0 * i, (900, 0), (100, 0)) for i in range(1, 4)]
    first = judge.evaluate(early)[0]
    assert first.outcome is Outcome.CONTINUE
    assert "no errors" in first.reason
    late = [interval(10.0 * i, (900, 0), (100, 0)) for i in range(1, 120)]
    assert judge.evaluate(late)[0].outcome is Outcome.PASS


def test_a_burst_of_canary_errors_fails_with_evidence() -> None:
    history = [interval(10.0 * i, (900, 4), (100, 12)) for i in range(1, 6)]
    verdict = make_judge("sequential", metrics=("error-rate",)).evaluate(history)[0]
    assert verdict.outcome is Outcome.FAIL
    evidence = verdict.evidence
    assert float(evidence["e_value_worse"] or 0) >= float(evidence["fail_at_e"] or 0)
    assert float(evidence["rate_ratio_lower"] or 0) >= 1.0
    assert evidence["canary_errors"] == 60 and evidence["baseline_requests"] == 4500


def test_alpha_is_shared_between_the_metrics_with_errors_getting_the_larger_part() -> None:
    history = [interval(10.0 * i, (900, 4), (100, 1), base_buckets=(100, 500, 890, 900),
                        can_buckets=(10, 50, 99, 100)) for i in range(1, 4)]
    both = {v.metric: v.evidence for v in make_judge("sequential", alpha=0.01).evaluate(history)}
    # Union bound: the chances of a false fail per metric add up to alpha exactly.
    spent = sum(1.0 / float(evidence["fail_at_e"] or 0) for evidence in both.values())
    assert spent == pytest.approx(0.01)
    assert float(both["error-rate"]["fail_at_e"] or 0) < float(both["latency"]["fail_at_e"] or 0)
    alone = make_judge("sequential", alpha=0.01, metrics=("latency",)).evaluate(history)[0]
    assert float(alone.evidence["fail_at_e"] or 0) == pytest.approx(100.0)


def test_latency_all_in_one_bucket_in_both_arms_passes_with_the_reason() -> None:
    history = [interval(10.0 * i, (900, 0), (100, 0), base_buckets=(900, 900, 900, 900),
                        can_buckets=(100, 100, 100, 100)) for i in range(1, 3)]
    verdict = make_judge("sequential", metrics=("latency",)).evaluate(history)[0]
    assert verdict.outcome is Outcome.PASS
    assert "one bucket" in verdict.reason


def test_missing_histograms_are_nodata_for_latency_only() -> None:
    history = [interval(10.0 * i, (900, 4), (100, 0)) for i in range(1, 5)]
    verdicts = {v.metric: v for v in make_judge("sequential").evaluate(history)}
    assert verdicts["latency"].outcome is Outcome.NODATA
    assert verdicts["error-rate"].outcome is not Outcome.NODATA


def test_the_judge_is_a_pure_function_of_the_history() -> None:
    streams = simulate(Scenario("2x", canary_error_factor=2.0, duration_s=600.0), 1, seed=5)
    judge = make_judge("sequential")
    history = streams.history(0)
    outcomes = judge.outcomes(history)
    assert judge.evaluate(history) == judge.evaluate(list(history))
    for looks in (1, 7, 30, len(history)):
        verdicts = make_judge("sequential").evaluate(history[:looks])
        assert combine(verdicts).outcome is outcomes[looks - 1]


def test_fractional_prometheus_counts_are_accepted() -> None:
    history = [interval(10.0 * i, (899.6, 4.4), (100.3, 0.7), base_buckets=(100.2, 450.1, 880.5, 899.6),
                        can_buckets=(11.1, 50.2, 98.0, 100.3)) for i in range(1, 10)]
    verdicts = make_judge("sequential").evaluate(history)
    assert all(v.outcome in (Outcome.CONTINUE, Outcome.PASS) for v in verdicts)


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"name": "bayes"}, "judge"),
    ({"alpha": 0.0}, "alpha"),
    ({"alpha": 1.5}, "alpha"),
    ({"metrics": ("errors",)}, "metrics"),
    ({"metrics": ()}, "metrics"),
    ({"error_margin": -1}, "error_margin"),
    ({"latency_margin": "big"}, "latency_margin"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_judge_options_raise_value_errors_naming_the_option(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        make_judge(**kwargs)  # type: ignore[arg-type]

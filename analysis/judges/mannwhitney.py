"""Kayenta-compatible judge: its Mann-Whitney classifier, applied to everything seen so far.

Kayenta's rules (NetflixACAJudge with MannWhitneyClassifier), which this reproduces per metric:
- no data in either arm: NoData (here `nodata`, never a pass);
- identical samples, or only one distinct value overall: Pass;
- otherwise a 98% Wilcoxon rank-sum interval for the shift canary - baseline with a Hodges-Lehmann
  style estimate; "High" when the interval's lower end exceeds tolerance (0.25) x |estimate| and the
  mean ratio canary/baseline is at least the allowed increase (1.0). Both built-in metrics are "higher
  is worse", so only High fails; Low counts as Pass. When each arm holds a single value Kayenta adds
  tiny noise; the interval then collapses to the difference, which we use directly (deterministic).

Kayenta compares time series; we have Prometheus counts, so the samples are:
- error-rate: one sample per interval and arm, that interval's error ratio (intervals with requests);
- latency: one sample per request, spread evenly inside its bucket as `histogram_quantile` assumes
  (8 points per bucket; +Inf bucket: the largest finite bound), from the summed histogram of every
  interval so far. Bucket midpoints alone would tie almost every pair and hide real shifts.

Before `min_intervals` (3) intervals it answers `continue`: with one interval per arm the error
samples are single values and Kayenta's degenerate-case rule would call any difference High.

It is not anytime-valid: re-running it every interval (peeking) raises its false-rollback rate; it is
here as the option teams migrating from Spinnaker expect, and as a baseline in the benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from analysis.judges.base import (
    ERROR_RATE,
    EvidenceDict,
    FloatArray,
    HistoryArrays,
    as_arrays,
    check_alpha,
    check_metrics,
    combined_outcome,
    finite_or_none,
    number_option,
    reject_unknown,
)
from analysis.model import Interval, Outcome, Verdict
from analysis.stats.buckets import per_bucket, representative_values, spread_counts
from analysis.stats.ranktest import WeightedSample, higher_at_zero, shift_interval

OPTIONS = ("confidence", "tolerance", "allowed_increase", "min_intervals")


@dataclass(frozen=True)
class Classification:
    outcome: Outcome
    reason: str
    evidence: dict[str, float | int | str | bool | None]


def classify(canary: WeightedSample | None, baseline: WeightedSample | None, *, confidence: float,
             tolerance: float, allowed_increase: float, metric: str, explain: bool = True) -> Classification:
    """Kayenta's classification of one metric with direction "increase is bad".

    With `explain=False` a sample whose rank statistic is not even significant at shift 0 is passed
    without computing the interval (it cannot be High); the outcome is the same, the evidence shorter.
    """
    if canary is None or baseline is None or canary.size <= 0 or baseline.size <= 0:
        missing = "canary" if canary is None or canary.size <= 0 else "baseline"
        return Classification(Outcome.NODATA, f"missing data for {metric} in the {missing}", {})
    sizes: EvidenceDict = {"canary_samples": canary.size, "baseline_samples": baseline.size}
    if np.array_equal(canary.values, baseline.values) and np.array_equal(canary.counts, baseline.counts):
        return Classification(Outcome.PASS, "the canary and baseline data are identical",
                              {**sizes, "mean_ratio": 1.0})
    if np.union1d(canary.values, baseline.values).size == 1:
        return Classification(Outcome.PASS, "every sample has the same value", {**sizes, "mean_ratio": 1.0})
    mean_ratio = 1.0 if baseline.mean == 0 else canary.mean / baseline.mean
    if canary.values.size == 1 and baseline.values.size == 1:
        difference = float(canary.values[0] - baseline.values[0])
        lower = upper = estimate = difference
    elif not explain and not higher_at_zero(canary, baseline, confidence):
        return Classification(Outcome.PASS, f"{metric} classified Pass", {**sizes})
    else:
        shift = shift_interval(canary, baseline, confidence)
        lower, upper, estimate = shift.lower, shift.upper, shift.estimate
    bound = tolerance * abs(estimate)
    evidence: EvidenceDict = {**sizes, "mean_ratio": finite_or_none(mean_ratio), "shift_estimate": estimate,
                "shift_lower": lower, "shift_upper": upper, "confidence": confidence, "tolerance": tolerance}
    if lower > bound and mean_ratio >= allowed_increase:
        return Classification(Outcome.FAIL, (
            f"{metric} classified High: the {confidence:.0%} interval for canary - baseline "
            f"[{lower:.4g}, {upper:.4g}] lies above {tolerance} x |estimate| = {bound:.4g}; "
            f"mean ratio {mean_ratio:.3g}"), evidence)
    return Classification(Outcome.PASS, f"{metric} classified Pass (mean ratio {mean_ratio:.3g})", evidence)


@dataclass(frozen=True)
class MannWhitneyJudge:
    alpha: float  # recorded for the caller; Kayenta's rule is set by `confidence`
    metrics: tuple[str, ...]
    confidence: float
    tolerance: float
    allowed_increase: float
    min_intervals: int
    name: str = "mannwhitney"

    @classmethod
    def from_options(cls, alpha: float, metrics: Sequence[str], options: Mapping[str, object]) -> MannWhitneyJudge:
        reject_unknown(options, OPTIONS, "mannwhitney")
        return cls(
            alpha=check_alpha(alpha),
            metrics=check_metrics(metrics),
            confidence=number_option(options, "confidence", 0.98, high=0.999999),
            tolerance=number_option(options, "tolerance", 0.25, inclusive_low=True, high=10.0),
            allowed_increase=number_option(options, "allowed_increase", 1.0, inclusive_low=True, high=100.0),
            min_intervals=_whole(number_option(options, "min_intervals", 3, high=10_000), "min_intervals"),
        )

    def evaluate(self, history: Sequence[Interval]) -> list[Verdict]:
        data = as_arrays(history)
        verdicts = []
        for metric in self.metrics:
            result = self._classify(metric, data, data.looks)
            verdicts.append(Verdict(result.outcome, metric, result.reason, result.evidence))
        return verdicts

    def outcomes(self, history: Sequence[Interval]) -> list[Outcome]:
        """Outcome after each look, for a controller that stops at the first failure."""
        data = as_arrays(history)
        result: list[Outcome] = []
        for looks in range(1, data.looks + 1):
            combined = combined_outcome([self._classify(m, data, looks, explain=False).outcome
                                         for m in self.metrics])
            result.append(combined)
            if combined is Outcome.FAIL:
                result.extend([Outcome.FAIL] * (data.looks - looks))
                break
        return result

    def _classify(self, metric: str, data: HistoryArrays, looks: int, explain: bool = True) -> Classification:
        if looks < self.min_intervals:
            return Classification(Outcome.CONTINUE, (
                f"waiting for {self.min_intervals} intervals before classifying (have {looks}): with one "
                "sample per arm Kayenta's interval collapses to the difference"), {"intervals": looks})
        if metric == ERROR_RATE:
            canary, baseline = _error_ratios(data.canary_errors[:looks], data.canary_requests[:looks]), \
                _error_ratios(data.baseline_errors[:looks], data.baseline_requests[:looks])
        else:
            canary, baseline = _latencies(data, looks, canary_arm=True), _latencies(data, looks, canary_arm=False)
        return classify(canary, baseline, confidence=self.confidence, tolerance=self.tolerance,
                        allowed_increase=self.allowed_increase, metric=metric, explain=explain)


def _whole(value: float, name: str) -> int:
    if value != int(value):
        raise ValueError(f"{name}: must be a whole number, got {value}")
    return int(value)


def _error_ratios(errors: FloatArray, requests: FloatArray) -> WeightedSample | None:
    served = requests > 0
    if not served.any():
        return None
    ratios = np.minimum(errors[served], requests[served]) / requests[served]
    return WeightedSample.of(ratios, np.ones(ratios.size))


def _latencies(data: HistoryArrays, looks: int, *, canary_arm: bool) -> WeightedSample | None:
    if not data.bounds:
        return None
    buckets = data.canary_buckets if canary_arm else data.baseline_buckets
    summed = buckets[:looks][data.has_buckets[:looks]].sum(axis=0)
    if summed.size == 0 or summed[-1] <= 0 or not math.isfinite(float(summed[-1])):
        return None
    values, owner = representative_values(data.bounds)
    return WeightedSample.of(values, spread_counts(per_bucket(summed), owner))

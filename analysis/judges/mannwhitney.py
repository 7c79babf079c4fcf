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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.judges.base import (
    ERROR_RATE,
    EvidenceDict,
    FloatArray,
    HistoryArrays,
    as_arrays,
    bucket_bounds,
    check_alpha,
    check_metrics,
    combined_outcome,
    finite_or_none,
    number_option,
    reject_unknown,
)
from analysis.judges.running import Judgement
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

    def follow(self) -> Judgement[Any]:
        return Judgement(MannWhitneyFold(self))

    def _classify(self, metric: str, data: HistoryArrays, looks: int, explain: bool = True) -> Classification:
        if looks < self.min_intervals:
            return self._waiting(looks)
        if metric == ERROR_RATE:
            canary = _sample(error_ratios(data.canary_errors[:looks], data.canary_requests[:looks]))
            baseline = _sample(error_ratios(data.baseline_errors[:looks], data.baseline_requests[:looks]))
        else:
            has = data.has_buckets[:looks]
            canary = _latencies(data.bounds, data.canary_buckets[:looks][has].sum(axis=0))
            baseline = _latencies(data.bounds, data.baseline_buckets[:looks][has].sum(axis=0))
        return self.classify(metric, canary, baseline, explain)

    def classify(self, metric: str, canary: WeightedSample | None, baseline: WeightedSample | None,
                 explain: bool = True) -> Classification:
        return classify(canary, baseline, confidence=self.confidence, tolerance=self.tolerance,
                        allowed_increase=self.allowed_increase, metric=metric, explain=explain)

    def _waiting(self, looks: int) -> Classification:
        return Classification(Outcome.CONTINUE, (
            f"waiting for {self.min_intervals} intervals before classifying (have {looks}): with one "
            "sample per arm Kayenta's interval collapses to the difference"), {"intervals": looks})

    def verdicts(self, looks: int, samples: Callable[[str], tuple[WeightedSample | None, WeightedSample | None]],
                 ) -> list[Verdict]:
        """The verdicts after `looks` intervals, given each metric's (canary, baseline) samples."""
        verdicts = []
        for metric in self.metrics:
            result = self._waiting(looks) if looks < self.min_intervals else self.classify(metric, *samples(metric))
            verdicts.append(Verdict(result.outcome, metric, result.reason, result.evidence))
        return verdicts


def _whole(value: float, name: str) -> int:
    if value != int(value):
        raise ValueError(f"{name}: must be a whole number, got {value}")
    return int(value)


def error_ratios(errors: FloatArray, requests: FloatArray) -> FloatArray:
    """Each interval's error ratio, for the intervals that served requests."""
    served = requests > 0
    ratios: FloatArray = np.minimum(errors[served], requests[served]) / requests[served]
    return ratios


def _sample(ratios: FloatArray) -> WeightedSample | None:
    return WeightedSample.of(ratios, np.ones(ratios.size)) if ratios.size else None


def _latencies(bounds: tuple[float, ...], summed: FloatArray) -> WeightedSample | None:
    """One value per request from the histogram summed over the intervals (None when empty)."""
    if not bounds:
        return None
    if summed.size == 0 or summed[-1] <= 0 or not math.isfinite(float(summed[-1])):
        return None
    values, owner = representative_values(bounds)
    return WeightedSample.of(values, spread_counts(per_bucket(summed), owner))


@dataclass(frozen=True)
class RatioChain:
    """One interval's error ratios (empty where the arm served nothing), linked to the interval before:
    the states of a release share their past, so adding an interval copies nothing."""

    canary: FloatArray
    baseline: FloatArray
    before: RatioChain | None

    def columns(self) -> tuple[FloatArray, FloatArray]:
        """Every interval's ratios, oldest first, as `error_ratios` gives them for the whole history."""
        canary: list[FloatArray] = []
        baseline: list[FloatArray] = []
        link: RatioChain | None = self
        while link is not None:
            canary.append(link.canary)
            baseline.append(link.baseline)
            link = link.before
        return np.concatenate(canary[::-1]), np.concatenate(baseline[::-1])


@dataclass(frozen=True)
class Seen:
    """What the Mann-Whitney judge keeps per release: the error ratios, the release's bucket layout and
    the histograms summed in history order (intervals with that layout in both arms)."""

    looks: int = 0
    ratios: RatioChain | None = None
    bounds: tuple[float, ...] = ()
    canary_histogram: FloatArray | None = None
    baseline_histogram: FloatArray | None = None


class MannWhitneyFold:
    """`Fold` for `MannWhitneyJudge`. Adding an interval is O(1); a verdict still ranks every interval's
    error ratio (Kayenta's test compares the whole samples), while latency is one summed histogram."""

    def __init__(self, judge: MannWhitneyJudge) -> None:
        self.judge = judge

    def empty(self) -> Seen:
        return Seen()

    def add(self, state: Seen, interval: Interval) -> Seen:
        bounds = state.bounds or bucket_bounds(interval)
        row = as_arrays([interval], bounds)
        ratios = RatioChain(error_ratios(row.canary_errors, row.canary_requests),
                            error_ratios(row.baseline_errors, row.baseline_requests), state.ratios)
        canary, baseline = state.canary_histogram, state.baseline_histogram
        if row.has_buckets[0]:
            canary = row.canary_buckets[0].copy() if canary is None else canary + row.canary_buckets[0]
            baseline = row.baseline_buckets[0].copy() if baseline is None else baseline + row.baseline_buckets[0]
        return Seen(state.looks + 1, ratios, bounds, canary, baseline)

    def verdicts(self, state: Seen) -> list[Verdict]:
        def samples(metric: str) -> tuple[WeightedSample | None, WeightedSample | None]:
            if metric == ERROR_RATE:
                if state.ratios is None:
                    return None, None
                canary, baseline = state.ratios.columns()
                return _sample(canary), _sample(baseline)
            empty = np.zeros(len(state.bounds))
            return (_latencies(state.bounds, empty if state.canary_histogram is None else state.canary_histogram),
                    _latencies(state.bounds, empty if state.baseline_histogram is None else state.baseline_histogram))

        return self.judge.verdicts(state.looks, samples)

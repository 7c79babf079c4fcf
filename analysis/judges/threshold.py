"""Flagger-compatible guard rails: fixed thresholds on the canary alone, rollback after N failed checks.

Flagger's built-in checks and their defaults: `request-success-rate` with thresholdRange.min 99 (%
of non-5xx responses) and `request-duration` with thresholdRange.max 500 (ms, the 99th percentile),
both over a 1-minute window, one check per analysis interval (1m); the canary is rolled back when its
failed-check count reaches `threshold` (5 in Flagger's examples). As in Flagger, the count accumulates
over the release (a passing check does not reset it) and one failing metric or several in the same
check count once. A window without canary traffic is "no values found": Flagger halts there without
counting a failure, so it is `nodata` here.

Checks run on whole windows: with 10-second looks and a 60-second check interval, the check covering
(0, 60] s completes at the look at t = 60 s, and looks in between report the last completed check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.judges.base import (
    ERROR_RATE,
    HistoryArrays,
    as_arrays,
    bucket_bounds,
    check_alpha,
    check_metrics,
    combined_outcome,
    number_option,
    reject_unknown,
)
from analysis.judges.running import Judgement
from analysis.model import Interval, Outcome, Verdict
from analysis.stats.buckets import quantile

OPTIONS = ("min_success_rate", "max_latency_ms", "latency_quantile", "failure_threshold", "check_interval_s")


@dataclass(frozen=True)
class Check:
    """One completed check window and what each metric measured in it (None: no values found)."""

    end_t: float
    values: dict[str, float | None]
    failed: dict[str, bool]


@dataclass(frozen=True)
class CheckTally:
    """The checks completed so far, as much of them as the verdicts need."""

    count: int = 0
    failed: int = 0  # checks in which any metric failed (one failing check counts once)
    failed_metrics: frozenset[str] = frozenset()
    last: Check | None = None

    def plus(self, check: Check) -> CheckTally:
        failing = frozenset(metric for metric, failed in check.failed.items() if failed)
        return CheckTally(self.count + 1, self.failed + (1 if failing else 0), self.failed_metrics | failing, check)

    @classmethod
    def of(cls, checks: Sequence[Check]) -> CheckTally:
        tally = cls()
        for check in checks:
            tally = tally.plus(check)
        return tally


@dataclass(frozen=True)
class ThresholdJudge:
    alpha: float  # recorded for the caller; thresholds decide here
    metrics: tuple[str, ...]
    min_success_rate: float
    max_latency_ms: float
    latency_quantile: float
    failure_threshold: int
    check_interval_s: float
    name: str = "threshold"

    @classmethod
    def from_options(cls, alpha: float, metrics: Sequence[str], options: Mapping[str, object]) -> ThresholdJudge:
        reject_unknown(options, OPTIONS, "threshold")
        failures = number_option(options, "failure_threshold", 5, high=1000)
        if failures != int(failures):
            raise ValueError(f"failure_threshold: must be a whole number of checks, got {failures}")
        return cls(
            alpha=check_alpha(alpha),
            metrics=check_metrics(metrics),
            min_success_rate=number_option(options, "min_success_rate", 99.0, inclusive_low=True, high=100.0),
            max_latency_ms=number_option(options, "max_latency_ms", 500.0),
            latency_quantile=number_option(options, "latency_quantile", 0.99, high=1.0),
            failure_threshold=int(failures),
            check_interval_s=number_option(options, "check_interval_s", 60.0),
        )

    def evaluate(self, history: Sequence[Interval]) -> list[Verdict]:
        data = as_arrays(history)
        return self.verdicts(CheckTally.of(self._checks(data, data.looks)))

    def outcomes(self, history: Sequence[Interval]) -> list[Outcome]:
        data = as_arrays(history)
        checks = self._checks(data, data.looks)
        result = []
        for i in range(data.looks):
            done = CheckTally.of([c for c in checks if c.end_t <= data.t[i]])
            result.append(combined_outcome([self._outcome(m, done) for m in self.metrics]))
        return result

    def follow(self) -> Judgement[Any]:
        return Judgement(ThresholdFold(self))

    def verdicts(self, checks: CheckTally) -> list[Verdict]:
        return [self._verdict(metric, checks) for metric in self.metrics]

    def window_end_after(self, t: float, window_end: float) -> float:
        """The end of the check window that follows the one a look at `t` completed."""
        while window_end <= t + 1e-9:
            window_end += self.check_interval_s
        return window_end

    def _checks(self, data: HistoryArrays, looks: int) -> list[Check]:
        checks: list[Check] = []
        start = 0
        window_end = self.check_interval_s
        for i in range(looks):
            if data.t[i] + 1e-9 < window_end:
                continue
            members = np.arange(start, i + 1)
            checks.append(self.check(data, members, float(data.t[i])))
            start = i + 1
            window_end = self.window_end_after(data.t[i], window_end)
        return checks

    def check(self, data: HistoryArrays, members: np.ndarray, end_t: float) -> Check:
        values: dict[str, float | None] = {}
        failed: dict[str, bool] = {}
        for metric in self.metrics:
            if metric == ERROR_RATE:
                requests = float(data.canary_requests[members].sum())
                errors = float(np.minimum(data.canary_errors, data.canary_requests)[members].sum())
                value = None if requests <= 0 else 100.0 * (1.0 - errors / requests)
                failed[metric] = value is not None and value < self.min_success_rate
            else:
                use = members[data.has_buckets[members]]
                summed = data.canary_buckets[use].sum(axis=0) if use.size else np.zeros(0)
                q = quantile(data.bounds, summed.tolist(), self.latency_quantile) if summed.size else None
                value = None if q is None else 1000.0 * q
                failed[metric] = value is not None and value > self.max_latency_ms
            values[metric] = value
        return Check(end_t, values, failed)

    def _outcome(self, metric: str, checks: CheckTally) -> Outcome:
        last = checks.last
        if last is None:
            return Outcome.CONTINUE
        if checks.failed >= self.failure_threshold and metric in checks.failed_metrics:
            return Outcome.FAIL
        if last.values[metric] is None:
            return Outcome.NODATA
        return Outcome.CONTINUE if last.failed[metric] else Outcome.PASS

    def _verdict(self, metric: str, checks: CheckTally) -> Verdict:
        outcome = self._outcome(metric, checks)
        failed_checks = checks.failed
        limit = (f"min {self.min_success_rate:g}% success" if metric == ERROR_RATE
                 else f"p{self.latency_quantile * 100:g} <= {self.max_latency_ms:g} ms")
        last_value = checks.last.values[metric] if checks.last else None
        evidence: dict[str, float | int | str | bool | None] = {
            "checks": checks.count,
            "failed_checks": failed_checks,
            "failure_threshold": self.failure_threshold,
            "last_value": last_value,
            "limit": limit,
        }
        unit = "%" if metric == ERROR_RATE else " ms"
        shown = "no values" if last_value is None else f"{last_value:.4g}{unit}"
        if outcome is Outcome.FAIL:
            reason = f"{failed_checks} failed checks reached the limit of {self.failure_threshold} ({limit})"
        elif checks.last is None:
            reason = f"first check completes after {self.check_interval_s:g} s"
        elif outcome is Outcome.NODATA:
            reason = "no values found for the canary in the last check window: is it receiving traffic?"
        elif outcome is Outcome.CONTINUE:
            reason = f"last check failed: {shown} ({limit}); {failed_checks}/{self.failure_threshold} failed checks"
        else:
            reason = f"last check passed: {shown} ({limit})"
        return Verdict(outcome, metric, reason, evidence)


@dataclass(frozen=True)
class OpenWindow:
    """The checks so far, plus the intervals of the check window still open (and where it ends)."""

    checks: CheckTally
    intervals: tuple[Interval, ...]
    window_end: float
    bounds: tuple[float, ...]  # the release's bucket layout, () until both arms report one


class ThresholdFold:
    """`Fold` for `ThresholdJudge`: a check is made once, when its window completes, from the window's
    intervals alone (with the release's bucket layout), exactly as `evaluate` makes it."""

    def __init__(self, judge: ThresholdJudge) -> None:
        self.judge = judge

    def empty(self) -> OpenWindow:
        return OpenWindow(CheckTally(), (), self.judge.check_interval_s, ())

    def add(self, state: OpenWindow, interval: Interval) -> OpenWindow:
        bounds = state.bounds or bucket_bounds(interval)
        window = (*state.intervals, interval)
        t = float(interval.t)
        if t + 1e-9 < state.window_end:
            return OpenWindow(state.checks, window, state.window_end, bounds)
        check = self.judge.check(as_arrays(window, bounds), np.arange(len(window)), t)
        return OpenWindow(state.checks.plus(check), (), self.judge.window_end_after(t, state.window_end), bounds)

    def verdicts(self, state: OpenWindow) -> list[Verdict]:
        return self.judge.verdicts(state.checks)

"""The sequential judge's statistics kept running per release: each interval is added once.

`SequentialJudge.evaluate` sums the per-interval log likelihood ratios of the whole history at every
look; what the verdict needs from that sum is small and adds up interval by interval: the summed
ratios on each grid, the running maxima of the e-processes (the verdicts use the running maximum),
the totals and the summed histograms. `SequentialFold` keeps exactly those, computes each interval's
ratios with the same functions (`error_rows`, `latency_rows` on a one-interval history, with the
release's bucket layout) and adds them in history order, the order `np.cumsum` and
`np.maximum.accumulate` use, so decisions come out as `evaluate`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from analysis.judges.base import ERROR_RATE, LATENCY, FloatArray, HistoryArrays, as_arrays, bucket_bounds
from analysis.judges.sequential import (
    ERROR_GRID,
    ERROR_PRIOR,
    LATENCY_GRID,
    LATENCY_LEVELS,
    LATENCY_PRIOR,
    ONE_BUCKET_MINIMUM,
    ErrorLook,
    LatencyLook,
    SequentialJudge,
    error_rows,
    latency_rows,
    weighted_cuts,
)
from analysis.model import Interval, Outcome, Verdict
from analysis.stats.eprocess import log_e_above, log_e_below


@dataclass(frozen=True)
class ErrorState:
    """Summed log likelihood ratios on ERROR_GRID (None before the first interval), totals summed in
    history order, and the running maxima of the three log e-processes."""

    cumulative: FloatArray | None = None
    canary_requests: float = 0.0
    baseline_requests: float = 0.0
    canary_errors: float = 0.0
    baseline_errors: float = 0.0
    max_worse: float = -math.inf
    max_not_worse: float = -math.inf
    max_below_floor: float = -math.inf
    outcome: Outcome = Outcome.NODATA


@dataclass(frozen=True)
class LatencyState:
    """The release's bucket layout (() until both arms report one), summed log likelihood ratios per
    cut, running maxima, what has been seen so far, and the latest look's "not slower" log e-value."""

    bounds: tuple[float, ...] = ()
    cumulative: tuple[FloatArray, ...] | None = None
    max_not_slower_by_cut: tuple[float, ...] = (-math.inf,) * len(LATENCY_LEVELS)
    has_seen: bool = False
    informative_seen: bool = False
    canary_seen: float = 0.0
    baseline_seen: float = 0.0
    max_slower: float = -math.inf
    max_not_slower: float = -math.inf
    not_slower: float = -math.inf
    one_bucket: bool = False
    canary_histogram: FloatArray | None = None
    baseline_histogram: FloatArray | None = None
    outcome: Outcome = Outcome.NODATA


@dataclass(frozen=True)
class SequentialState:
    looks: int = 0
    errors: ErrorState = ErrorState()
    latency: LatencyState = LatencyState()


def _max(previous: float, value: float) -> float:
    """One step of `np.maximum.accumulate` (NaN propagates, as there)."""
    return float(np.maximum(previous, value))


class SequentialFold:
    """`Fold` for `SequentialJudge`: `analysis.judges.running.Judgement(SequentialFold(judge))`."""

    def __init__(self, judge: SequentialJudge) -> None:
        self.judge = judge
        self._error_pass = judge.pass_side(ERROR_RATE)
        self._latency_pass = judge.pass_side(LATENCY)
        self._zero_latency_row = np.zeros(LATENCY_GRID.log_ratios.size)

    def empty(self) -> SequentialState:
        return SequentialState()

    def add(self, state: SequentialState, interval: Interval) -> SequentialState:
        bounds = state.latency.bounds or bucket_bounds(interval)
        row = as_arrays([interval], bounds)
        errors, latency = state.errors, state.latency
        if ERROR_RATE in self.judge.metrics:
            errors = self._add_errors(errors, row)
        if LATENCY in self.judge.metrics:
            latency = self._add_latency(replace(latency, bounds=bounds), row)
        return SequentialState(state.looks + 1, errors, latency)

    def verdicts(self, state: SequentialState) -> list[Verdict]:
        verdicts = []
        for metric in self.judge.metrics:
            if state.looks == 0:
                verdicts.append(Verdict(Outcome.NODATA, metric, "no intervals yet", {}))
            elif metric == ERROR_RATE:
                verdicts.append(self._error_verdict(state.errors))
            else:
                verdicts.append(self._latency_verdict(state.latency))
        return verdicts

    def _add_errors(self, state: ErrorState, row: HistoryArrays) -> ErrorState:
        rows = error_rows(row)
        cumulative = rows.log_lr[0] if state.cumulative is None else state.cumulative + rows.log_lr[0]
        canary_requests = state.canary_requests + float(rows.canary_requests[0])
        baseline_requests = state.baseline_requests + float(rows.baseline_requests[0])
        canary_errors = state.canary_errors + float(rows.canary_errors[0])
        margin_index, pass_prior = self._error_pass
        worse = float(log_e_above(cumulative[None, :], ERROR_GRID.one, ERROR_PRIOR, ERROR_GRID)[0])
        not_worse = float(log_e_below(cumulative[None, :], margin_index, pass_prior, ERROR_GRID)[0])
        below_floor = float(self.judge.below_floor(np.array([canary_errors]), np.array([canary_requests]))[0])
        max_worse = _max(state.max_worse, worse)
        max_not_worse = _max(state.max_not_worse, not_worse)
        max_below_floor = _max(state.max_below_floor, below_floor)
        outcome = self._outcome(ERROR_RATE, max_worse, canary_requests <= 0 or baseline_requests <= 0,
                                _max(max_not_worse, max_below_floor))
        return ErrorState(cumulative, canary_requests, baseline_requests, canary_errors,
                          state.baseline_errors + float(rows.baseline_errors[0]),
                          max_worse, max_not_worse, max_below_floor, outcome)

    def _add_latency(self, state: LatencyState, row: HistoryArrays) -> LatencyState:
        if state.bounds:
            rows = latency_rows(row)
            log_lr = tuple(cut[0] for cut in rows.log_lr)
            has, informative = bool(rows.has[0]), bool(rows.informative[0])
            canary_total, baseline_total = float(rows.canary_total[0]), float(rows.baseline_total[0])
        else:  # no layout yet: what `evaluate` computes for this interval once a later one brings a layout
            log_lr = (self._zero_latency_row,) * len(LATENCY_LEVELS)
            has = informative = False
            canary_total = baseline_total = 0.0
        cumulative = log_lr if state.cumulative is None else \
            tuple(total + cut for total, cut in zip(state.cumulative, log_lr, strict=True))
        margin_index, pass_prior = self._latency_pass
        slower_by_cut = [log_e_above(c[None, :], LATENCY_GRID.one, LATENCY_PRIOR, LATENCY_GRID) for c in cumulative]
        max_not_slower_by_cut = tuple(
            _max(previous, float(log_e_below(c[None, :], margin_index, pass_prior, LATENCY_GRID)[0]))
            for previous, c in zip(state.max_not_slower_by_cut, cumulative, strict=True))
        slower = float(weighted_cuts(slower_by_cut)[0])
        not_slower = float(np.min(np.stack([np.array([m]) for m in max_not_slower_by_cut]), axis=0)[0])
        informative_seen = state.informative_seen or informative
        canary_seen, baseline_seen = state.canary_seen + canary_total, state.baseline_seen + baseline_total
        one_bucket = (not informative_seen and canary_seen >= ONE_BUCKET_MINIMUM
                      and baseline_seen >= ONE_BUCKET_MINIMUM)
        if one_bucket:
            not_slower = math.inf
        max_slower, max_not_slower = _max(state.max_slower, slower), _max(state.max_not_slower, not_slower)
        has_seen = state.has_seen or has
        canary_histogram, baseline_histogram = state.canary_histogram, state.baseline_histogram
        if has:
            canary_histogram = _plus(canary_histogram, row.canary_buckets[0])
            baseline_histogram = _plus(baseline_histogram, row.baseline_buckets[0])
        outcome = self._outcome(LATENCY, max_slower, not has_seen, max_not_slower)
        return LatencyState(state.bounds, cumulative, max_not_slower_by_cut, has_seen, informative_seen,
                            canary_seen, baseline_seen, max_slower, max_not_slower, not_slower, one_bucket,
                            canary_histogram, baseline_histogram, outcome)

    def _outcome(self, metric: str, max_worse: float, no_data: bool, max_better: float) -> Outcome:
        """`SequentialJudge._decide` for one look, given the running maxima."""
        if max_worse >= self.judge.fail_threshold(metric):
            return Outcome.FAIL
        if no_data:
            return Outcome.NODATA
        return Outcome.PASS if max_better >= self.judge.pass_threshold(metric) else Outcome.CONTINUE

    def _error_verdict(self, state: ErrorState) -> Verdict:
        assert state.cumulative is not None
        look = ErrorLook(state.outcome, state.cumulative, state.max_worse, state.max_not_worse,
                         state.max_below_floor, state.canary_requests, state.baseline_requests,
                         state.canary_errors, state.baseline_errors)
        return Verdict(state.outcome, ERROR_RATE, *self.judge.explain_errors(look))

    def _latency_verdict(self, state: LatencyState) -> Verdict:
        if not state.bounds:
            return Verdict(Outcome.NODATA, LATENCY, "no latency histogram for this workload", {})
        assert state.cumulative is not None
        empty = np.zeros(len(state.bounds))
        look = LatencyLook(state.outcome, state.cumulative[0], state.max_slower, state.not_slower,
                           state.one_bucket, state.bounds,
                           empty if state.canary_histogram is None else state.canary_histogram,
                           empty if state.baseline_histogram is None else state.baseline_histogram)
        return Verdict(state.outcome, LATENCY, *self.judge.explain_latency(look))


def _plus(total: FloatArray | None, counts: FloatArray) -> FloatArray:
    """Histograms summed in history order (what `sum(axis=0)` over the intervals does)."""
    return counts.copy() if total is None else total + counts

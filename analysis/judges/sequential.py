"""The default judge: anytime-valid e-processes, so looking every interval costs no false rollbacks.

Errors. Within one interval, given how many requests each arm served and how many errors there were
in all, the canary's number of errors is Binomial(errors, canary share of requests) when both arms
fail at the same rate (see `stats.shares`). The likelihood ratio of "the canary's error rate is theta
times the baseline's", mixed over theta > 1, multiplies across intervals into an e-process that stays
valid when the traffic split changes between intervals. Only "canary worse" can fail.

Latency. Each interval is cut at bucket bounds near the pooled (both arms) median and 90th
percentile. Given the pooled histogram, which arm each slow request came from follows Fisher's
noncentral hypergeometric law with the odds ratio of being slow; under "same distribution" the odds
ratio is 1. The split is chosen from the pooled counts we condition on, so it cannot favour an arm.
One e-process per cut, mixed over odds ratios > 1 (canary slower); the cuts are averaged with fixed
weights.

Pass needs evidence too: a second e-process per metric against "canary worse than the margin"
(alternatives below it). For errors either margin will do: the rate ratio below 1 + error_margin
(default 2x), or the canary's own error rate below error_floor (default 1%), which is what lets a
service with no errors in either arm pass at all.

Alpha is split across metrics (Bonferroni, 4:1 for errors over latency, see ALPHA_SHARE), so `alpha`
bounds the false-rollback probability of the whole release. Verdicts use the running maximum of each
e-process: once a boundary has been crossed the decision stands, as it would have for a controller
that was watching at that moment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.judges.base import (
    ERROR_RATE,
    LATENCY,
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
from analysis.judges.running import Judgement
from analysis.model import Interval, Outcome, Verdict
from analysis.stats.buckets import quantile, split_indices
from analysis.stats.eprocess import (
    BlendedPrior,
    MixturePrior,
    RatioGrid,
    confidence_bounds,
    log_e_above,
    log_e_below,
    logsumexp,
)
from analysis.stats.shares import binomial_share_loglr, noncentral_share_loglr

BoolArray = NDArray[np.bool_]

OPTIONS = ("pass_alpha", "error_margin", "latency_margin", "error_floor")

# Rate ratios 2^(k/8) up to 64x either way; odds ratios 2^(k/4) up to 8x.
ERROR_GRID = RatioGrid(step=math.log(2) / 8, half_width=48)
LATENCY_GRID = RatioGrid(step=math.log(2) / 4, half_width=12)
# Where the mixtures put their weight: tuned on the benchmark so that 2x errors and +10% latency are
# caught fast while larger effects still cross within one or two looks. For errors most of the weight
# sits close to 2x (the effect that needs every bit of evidence: errors are rare) and the rest is spread
# wide around 5x, which catches 4x-10x within a look of the test that knows the effect.
ERROR_PRIOR = BlendedPrior(((0.7, MixturePrior(centre=math.log(2.0), spread=0.1)),
                            (0.3, MixturePrior(centre=math.log(5.0), spread=1.0))))
LATENCY_PRIOR = BlendedPrior(((0.8, MixturePrior(centre=math.log(1.4), spread=0.2)),
                              (0.2, MixturePrior(centre=math.log(3.0), spread=1.0))))
LATENCY_LEVELS = (0.5, 0.9)
# The median cut carries about twice the information of the p90 cut about a shift of the whole
# distribution; the p90 cut is there for regressions in the tail only.
LATENCY_CUT_WEIGHTS = (0.7, 0.3)
# How alpha is shared between metrics (normalised over the metrics judged). Errors are rare events, so
# the error test is short of evidence and gains most from a larger share; latency is measured on every
# request and can spare it (bench/judges.py: 2x errors 340 s -> 280 s median, +10% latency stays at 70 s).
ALPHA_SHARE = {ERROR_RATE: 4.0, LATENCY: 1.0}
# Requests per arm before "everything fell in one bucket" counts as evidence of no slowdown.
ONE_BUCKET_MINIMUM = 100.0


@dataclass(frozen=True)
class MetricPath:
    """Per-look outcome of one metric plus what the final verdict reports."""

    outcomes: list[Outcome]
    reason: str
    evidence: dict[str, float | int | str | bool | None]


@dataclass(frozen=True)
class ErrorLook:
    """What the error-rate verdict reports after a look, however it was computed (in one pass over the
    history, or kept running): the outcome, the summed log likelihood ratios on ERROR_GRID, the running
    maxima of the log e-processes and the totals."""

    outcome: Outcome
    cumulative: FloatArray
    log_e_worse: float
    log_e_not_worse: float
    log_e_below_floor: float
    canary_requests: float
    baseline_requests: float
    canary_errors: float
    baseline_errors: float


@dataclass(frozen=True)
class LatencyLook:
    """What the latency verdict reports after a look: the outcome, the median cut's summed log
    likelihood ratios, the running maximum of the "slower" log e-value, the latest "not slower" one,
    and the summed histograms of the intervals with latency in both arms."""

    outcome: Outcome
    median_cumulative: FloatArray
    log_e_slower: float
    log_e_not_slower: float
    one_bucket: bool
    bounds: tuple[float, ...]
    canary_histogram: FloatArray
    baseline_histogram: FloatArray


@dataclass(frozen=True)
class SequentialJudge:
    """Options (all optional): `pass_alpha` (default: alpha), the error budget of a wrong pass;
    `error_margin` (1.0: pass once the canary's error rate is provably below 2x the baseline's);
    `error_floor` (0.01: or provably below 1% absolute); `latency_margin` (0.5: pass once the odds
    of a request being slower than each cut are provably below 1.5x, rounded down to the grid: 1.41x).
    """

    alpha: float
    metrics: tuple[str, ...]
    pass_alpha: float
    error_margin: float
    latency_margin: float
    error_floor: float
    name: str = "sequential"

    @classmethod
    def from_options(cls, alpha: float, metrics: Sequence[str], options: Mapping[str, object]) -> SequentialJudge:
        reject_unknown(options, OPTIONS, "sequential")
        checked_alpha = check_alpha(alpha)
        return cls(
            alpha=checked_alpha,
            metrics=check_metrics(metrics),
            pass_alpha=number_option(options, "pass_alpha", checked_alpha, high=0.5),
            error_margin=number_option(options, "error_margin", 1.0, high=63.0),
            latency_margin=number_option(options, "latency_margin", 0.5, high=7.0),
            error_floor=number_option(options, "error_floor", 0.01, high=0.5),
        )

    def share(self, metric: str) -> float:
        """This metric's fraction of alpha (and of pass_alpha); the fractions sum to 1 over the metrics."""
        return ALPHA_SHARE[metric] / sum(ALPHA_SHARE[m] for m in self.metrics)

    def fail_threshold(self, metric: str) -> float:
        return math.log(1.0 / (self.alpha * self.share(metric)))

    def pass_threshold(self, metric: str) -> float:
        return math.log(1.0 / (self.pass_alpha * self.share(metric)))

    def evaluate(self, history: Sequence[Interval]) -> list[Verdict]:
        data = as_arrays(history)
        verdicts = []
        for metric in self.metrics:
            path = self._path(metric, data, with_evidence=True)
            outcome = path.outcomes[-1] if path.outcomes else Outcome.NODATA
            reason = path.reason if path.outcomes else "no intervals yet"
            verdicts.append(Verdict(outcome, metric, reason, path.evidence))
        return verdicts

    def outcomes(self, history: Sequence[Interval]) -> list[Outcome]:
        data = as_arrays(history)
        paths = [self._path(metric, data, with_evidence=False).outcomes for metric in self.metrics]
        return [combined_outcome([p[i] for p in paths]) for i in range(data.looks)]

    def follow(self) -> Judgement[Any]:
        # The fold reads this module's grids and priors, hence the late import.
        from analysis.judges.sequential_running import SequentialFold

        return Judgement(SequentialFold(self))

    def _path(self, metric: str, data: HistoryArrays, *, with_evidence: bool) -> MetricPath:
        if metric == ERROR_RATE:
            return self._errors(data, with_evidence)
        return self._latency(data, with_evidence)

    def _decide(self, metric: str, no_data: np.ndarray, worse: FloatArray, better: FloatArray) -> list[Outcome]:
        failed = np.maximum.accumulate(worse) >= self.fail_threshold(metric)
        passed = np.maximum.accumulate(better) >= self.pass_threshold(metric)
        outcome = np.where(failed, 0, np.where(no_data, 1, np.where(passed, 3, 2)))
        order = (Outcome.FAIL, Outcome.NODATA, Outcome.CONTINUE, Outcome.PASS)
        return [order[k] for k in outcome.tolist()]

    def pass_side(self, metric: str) -> tuple[int, MixturePrior]:
        """The margin's grid index and the prior over alternatives below it, for the "not worse" test."""
        grid, margin = (ERROR_GRID, self.error_margin) if metric == ERROR_RATE else (LATENCY_GRID, self.latency_margin)
        index = grid.index_at_or_below(1.0 + margin)
        return index, MixturePrior(centre=math.log(grid.ratio(index)), spread=0.5)

    def below_floor(self, errors: FloatArray, requests: FloatArray) -> FloatArray:
        """Log e-value of "canary error rate >= floor" against a quarter of it, from the canary's running
        totals: lets a service with no errors at all pass (the default floor, 1%, is what Flagger's
        default 99% success-rate rule tolerates)."""
        floor = self.error_floor
        result: FloatArray = errors * math.log(0.25) + (requests - errors) * math.log((1 - floor / 4) / (1 - floor))
        return result

    def _errors(self, data: HistoryArrays, with_evidence: bool) -> MetricPath:
        rows = error_rows(data)
        cumulative = np.cumsum(rows.log_lr, axis=0)
        margin_index, pass_prior = self.pass_side(ERROR_RATE)
        worse = log_e_above(cumulative, ERROR_GRID.one, ERROR_PRIOR, ERROR_GRID)
        better = log_e_below(cumulative, margin_index, pass_prior, ERROR_GRID)
        below_floor = self.below_floor(np.cumsum(rows.canary_errors), np.cumsum(rows.canary_requests))
        no_data = (np.cumsum(rows.canary_requests) <= 0) | (np.cumsum(rows.baseline_requests) <= 0)
        outcomes = self._decide(ERROR_RATE, no_data, worse, np.maximum(better, below_floor))
        if not with_evidence or not outcomes:
            return MetricPath(outcomes, "", {})

        look = ErrorLook(outcomes[-1], cumulative[-1], float(np.max(worse)), float(np.max(better)),
                         float(np.max(below_floor)), float(rows.canary_requests.sum()),
                         float(rows.baseline_requests.sum()), float(rows.canary_errors.sum()),
                         float(rows.baseline_errors.sum()))
        return MetricPath(outcomes, *self.explain_errors(look))

    def explain_errors(self, look: ErrorLook) -> tuple[str, EvidenceDict]:
        """The error-rate verdict's reason and evidence after a look."""
        fail_at = self.fail_threshold(ERROR_RATE)
        margin_index, pass_prior = self.pass_side(ERROR_RATE)
        tot_can_req, tot_base_req = look.canary_requests, look.baseline_requests
        tot_can_err, tot_base_err = look.canary_errors, look.baseline_errors
        can_rate = tot_can_err / tot_can_req if tot_can_req else math.nan
        base_rate = tot_base_err / tot_base_req if tot_base_req else math.nan
        ratio = can_rate / base_rate if base_rate and not math.isnan(base_rate) else math.nan
        lower, upper = confidence_bounds(look.cumulative, ERROR_PRIOR, pass_prior, ERROR_GRID, fail_at)
        e_worse = float(np.exp(min(700.0, look.log_e_worse)))
        e_better = float(np.exp(min(700.0, look.log_e_not_worse)))
        evidence: EvidenceDict = {
            "e_value_worse": e_worse,
            "e_value_not_worse": e_better,
            "e_value_below_floor": float(np.exp(min(700.0, look.log_e_below_floor))),
            "fail_at_e": math.exp(fail_at),
            "pass_at_e": math.exp(self.pass_threshold(ERROR_RATE)),
            "rate_ratio": finite_or_none(ratio),
            "rate_ratio_lower": finite_or_none(lower),
            "rate_ratio_upper": finite_or_none(upper),
            "margin_ratio": ERROR_GRID.ratio(margin_index),
            "canary_error_rate": finite_or_none(can_rate),
            "baseline_error_rate": finite_or_none(base_rate),
            "canary_requests": tot_can_req,
            "baseline_requests": tot_base_req,
            "canary_errors": tot_can_err,
            "baseline_errors": tot_base_err,
        }
        last = look.outcome
        floor = self.error_floor
        if last is Outcome.NODATA:
            empty = "canary" if tot_can_req <= 0 else "baseline"
            reason = f"no requests reached the {empty} yet"
        elif last is Outcome.FAIL:
            reason = (f"canary error rate is higher than the baseline's (e-value {e_worse:.3g} >= "
                      f"{math.exp(fail_at):.3g}; rate ratio {_fmt(ratio)}, above {_fmt(lower)})")
        elif last is Outcome.PASS:
            reason = (f"canary error rate is not worse than {ERROR_GRID.ratio(margin_index):.3g}x the baseline's "
                      f"or below the {floor:.3%} floor (ratio {_fmt(ratio)}, at most {_fmt(upper)})")
        elif tot_can_err + tot_base_err == 0:
            reason = f"no errors in either arm yet ({tot_can_req:.0f} canary requests); waiting for evidence"
        else:
            reason = (f"no conclusion yet: rate ratio {_fmt(ratio)} within [{_fmt(lower)}, {_fmt(upper)}], "
                      f"e-value {e_worse:.3g} of {math.exp(fail_at):.3g} needed to fail")
        return reason, evidence

    def _latency(self, data: HistoryArrays, with_evidence: bool) -> MetricPath:
        looks = data.looks
        if not data.bounds:
            outcomes = [Outcome.NODATA] * looks
            return MetricPath(outcomes, "no latency histogram for this workload", {})
        rows = latency_rows(data)
        margin_index, pass_prior = self.pass_side(LATENCY)
        worse_by_cut, better_by_cut = [], []
        median_cumulative = np.zeros((looks, LATENCY_GRID.log_ratios.size))
        for j, log_lr in enumerate(rows.log_lr):
            cumulative = np.cumsum(log_lr, axis=0)
            if j == 0:
                median_cumulative = cumulative
            worse_by_cut.append(log_e_above(cumulative, LATENCY_GRID.one, LATENCY_PRIOR, LATENCY_GRID))
            better_by_cut.append(np.maximum.accumulate(
                log_e_below(cumulative, margin_index, pass_prior, LATENCY_GRID)))
        worse = weighted_cuts(worse_by_cut)
        better = np.min(np.stack(better_by_cut), axis=0)
        # Both arms entirely inside one bucket: no slowdown is measurable at this resolution.
        seen_can, seen_base = np.cumsum(rows.canary_total), np.cumsum(rows.baseline_total)
        one_bucket = ((np.cumsum(rows.informative) == 0) & (seen_can >= ONE_BUCKET_MINIMUM)
                      & (seen_base >= ONE_BUCKET_MINIMUM))
        better = np.where(one_bucket, math.inf, better)
        outcomes = self._decide(LATENCY, np.cumsum(rows.has) == 0, worse, better)
        if not with_evidence or not outcomes:
            return MetricPath(outcomes, "", {})

        look = LatencyLook(outcomes[-1], median_cumulative[-1], float(np.max(worse)), float(better[-1]),
                           bool(one_bucket[-1]), data.bounds, data.canary_buckets[rows.has].sum(axis=0),
                           data.baseline_buckets[rows.has].sum(axis=0))
        return MetricPath(outcomes, *self.explain_latency(look))

    def explain_latency(self, look: LatencyLook) -> tuple[str, EvidenceDict]:
        """The latency verdict's reason and evidence after a look."""
        fail_at = self.fail_threshold(LATENCY)
        margin_index, pass_prior = self.pass_side(LATENCY)
        can_hist, base_hist = look.canary_histogram, look.baseline_histogram
        can_p50 = quantile(look.bounds, can_hist.tolist(), 0.5)
        base_p50 = quantile(look.bounds, base_hist.tolist(), 0.5)
        can_p90 = quantile(look.bounds, can_hist.tolist(), 0.9)
        base_p90 = quantile(look.bounds, base_hist.tolist(), 0.9)
        p50_ratio = can_p50 / base_p50 if can_p50 is not None and base_p50 else None
        lower, upper = confidence_bounds(look.median_cumulative, LATENCY_PRIOR, pass_prior, LATENCY_GRID, fail_at)
        e_worse = float(np.exp(min(700.0, look.log_e_slower)))
        e_better = float(np.exp(min(700.0, look.log_e_not_slower)))
        evidence: EvidenceDict = {
            "e_value_slower": e_worse,
            "e_value_not_slower": e_better,
            "fail_at_e": math.exp(fail_at),
            "pass_at_e": math.exp(self.pass_threshold(LATENCY)),
            "slow_odds_ratio_lower": finite_or_none(lower),
            "slow_odds_ratio_upper": finite_or_none(upper),
            "margin_odds_ratio": LATENCY_GRID.ratio(margin_index),
            "canary_p50_s": can_p50,
            "baseline_p50_s": base_p50,
            "canary_p90_s": can_p90,
            "baseline_p90_s": base_p90,
            "p50_ratio": p50_ratio,
            "canary_requests": float(can_hist[-1]) if can_hist.size else 0.0,
            "baseline_requests": float(base_hist[-1]) if base_hist.size else 0.0,
        }
        last = look.outcome
        if last is Outcome.NODATA:
            reason = "no interval yet with latency buckets and requests in both arms"
        elif last is Outcome.FAIL:
            reason = (f"canary is slower than the baseline (e-value {e_worse:.3g} >= "
                      f"{math.exp(fail_at):.3g}; p50 {_fmt_s(can_p50)} vs {_fmt_s(base_p50)})")
        elif last is Outcome.PASS and look.one_bucket:
            reason = "every request of both arms fell in one bucket: no slowdown measurable at this resolution"
        elif last is Outcome.PASS:
            reason = (f"canary is not slower than the margin (odds of a slow request at most "
                      f"{LATENCY_GRID.ratio(margin_index):.3g}x the baseline's; p50 {_fmt_s(can_p50)} vs "
                      f"{_fmt_s(base_p50)})")
        else:
            reason = (f"no conclusion yet: p50 {_fmt_s(can_p50)} vs {_fmt_s(base_p50)}, e-value {e_worse:.3g} "
                      f"of {math.exp(fail_at):.3g} needed to fail")
        return reason, evidence


@dataclass(frozen=True)
class ErrorRows:
    """Per interval: the log likelihood ratios on ERROR_GRID and the counts they come from (errors at
    most the requests)."""

    log_lr: FloatArray
    canary_requests: FloatArray
    baseline_requests: FloatArray
    canary_errors: FloatArray
    baseline_errors: FloatArray


def error_rows(data: HistoryArrays) -> ErrorRows:
    can_req, base_req = data.canary_requests, data.baseline_requests
    can_err = np.minimum(data.canary_errors, can_req)
    base_err = np.minimum(data.baseline_errors, base_req)
    share = np.divide(can_req, can_req + base_req, out=np.zeros_like(can_req), where=(can_req + base_req) > 0)
    log_lr = binomial_share_loglr(can_err, can_err + base_err, share, ERROR_GRID.log_ratios)
    return ErrorRows(log_lr, can_req, base_req, can_err, base_err)


@dataclass(frozen=True)
class LatencyRows:
    """Per interval: whether it has latency buckets and requests in both arms, the log likelihood ratios
    on LATENCY_GRID for each cut (zero where the cut is unusable), whether any cut was usable, and the
    requests each arm's histogram counted (0 without latency in both arms)."""

    has: BoolArray
    log_lr: tuple[FloatArray, ...]
    informative: BoolArray
    canary_total: FloatArray
    baseline_total: FloatArray


def latency_rows(data: HistoryArrays) -> LatencyRows:
    """Needs `data.bounds`. Each cut's split is chosen from the pooled counts of the interval alone."""
    has = data.has_buckets & (data.canary_requests > 0) & (data.baseline_requests > 0)
    can_n = np.where(has, data.canary_buckets[:, -1], 0.0)
    base_n = np.where(has, data.baseline_buckets[:, -1], 0.0)
    pooled = data.canary_buckets + data.baseline_buckets
    cuts = split_indices(pooled, LATENCY_LEVELS)
    log_lr, informative = [], np.zeros(data.looks, dtype=bool)
    for j in range(len(LATENCY_LEVELS)):
        cut = cuts[:, j]
        usable = has & (cut >= 0)
        informative |= usable
        at = np.where(usable, cut, 0)[:, None]
        slow_canary = np.where(usable, can_n - np.take_along_axis(data.canary_buckets, at, 1)[:, 0], 0.0)
        slow_total = np.where(usable, can_n + base_n - np.take_along_axis(pooled, at, 1)[:, 0], 0.0)
        log_lr.append(noncentral_share_loglr(slow_canary, np.where(usable, can_n, 0.0),
                                             np.where(usable, base_n, 0.0), slow_total, LATENCY_GRID.log_ratios))
    return LatencyRows(has, tuple(log_lr), informative, can_n, base_n)


def weighted_cuts(log_e_by_cut: Sequence[FloatArray]) -> FloatArray:
    """The cuts' log e-processes averaged with LATENCY_CUT_WEIGHTS (an average of e-processes is one)."""
    cut_log_weights = np.log(np.asarray(LATENCY_CUT_WEIGHTS))[:, None]
    return logsumexp(np.stack(log_e_by_cut) + cut_log_weights, axis=0)


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "unknown"


def _fmt_s(value: float | None) -> str:
    return "unknown" if value is None else f"{value * 1000:.0f}ms"

"""Two-sample Wilcoxon / Mann-Whitney confidence interval for a location shift, on weighted samples.

This follows R's `wilcox.test(x, y, conf.int=TRUE, exact=FALSE, correct=TRUE)`, which is what
Kayenta's Mann-Whitney classifier ports: the interval is the set of shifts `mu` for which the
normal-approximation statistic of (x - mu) against y (continuity- and tie-corrected) stays inside the
two-sided quantiles; the estimate is the shift where the statistic crosses zero.

Samples are given as (distinct values, counts) so that a latency histogram with a million requests
costs as much as its dozen buckets. The statistic only changes at shifts equal to some x_i - y_j,
so the roots are found exactly by bisection over those breakpoints instead of a numeric solver
(Kayenta uses Brent's method on the same step function; both land on the jump).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ShiftInterval:
    lower: float
    upper: float
    estimate: float


@dataclass(frozen=True)
class WeightedSample:
    values: FloatArray
    counts: FloatArray

    @classmethod
    def of(cls, values: FloatArray, counts: FloatArray) -> WeightedSample:
        v = np.asarray(values, dtype=float)
        c = np.asarray(counts, dtype=float)
        keep = c > 0
        order = np.argsort(v[keep], kind="stable")
        uniq, inverse = np.unique(v[keep][order], return_inverse=True)
        return cls(uniq, np.bincount(inverse, weights=c[keep][order]).astype(float))

    @property
    def size(self) -> float:
        return float(self.counts.sum())

    @property
    def mean(self) -> float:
        return float((self.values * self.counts).sum() / self.counts.sum())


class _RankShift:
    """The continuity- and tie-corrected rank-sum z statistic of (x - mu) against y, as a function of mu.

    Everything that does not depend on mu is computed once; a call costs two binary searches.
    """

    def __init__(self, x: WeightedSample, y: WeightedSample) -> None:
        self.x, self.y = x, y
        self.cum_y = np.concatenate(([0.0], np.cumsum(y.counts)))
        self.nx, self.ny = x.size, y.size
        n = self.nx + self.ny
        self.within_ties = float((x.counts**3 - x.counts).sum() + (y.counts**3 - y.counts).sum())
        self.tie_scale = n * (n - 1)
        self.n_plus_one = n + 1
        self.var_scale = self.nx * self.ny / 12.0

    def __call__(self, mu: float, quantile: float) -> float:
        shifted = self.x.values - mu
        below = self.cum_y[np.searchsorted(self.y.values, shifted, side="left")]
        equal = self.cum_y[np.searchsorted(self.y.values, shifted, side="right")] - below
        u = float(self.x.counts @ (below + 0.5 * equal))
        dz = u - self.nx * self.ny / 2.0
        ties = self.within_ties
        if equal.any():
            # x values are distinct, so each shifted x meets at most one y value: merge those two groups.
            hit = equal > 0
            a, b = self.x.counts[hit], equal[hit]
            ties += float(((a + b) ** 3 - (a + b) - (a**3 - a) - (b**3 - b)).sum())
        variance = self.var_scale * (self.n_plus_one - ties / self.tie_scale)
        if variance <= 0:
            raise ValueError("cannot compute a confidence interval when all observations are tied")
        correction = 0.5 * float(np.sign(dz))
        return float((dz - correction) / np.sqrt(variance) - quantile)


def _first_gap(statistic: _RankShift, gaps: FloatArray, quantile: float, strict: bool) -> int:
    """Index of the first gap where the statistic is <= 0 (or < 0 when `strict`); gaps.size if none."""
    lo, hi = -1, gaps.size
    while hi - lo > 1:
        mid = (lo + hi) // 2
        value = statistic(float(gaps[mid]), quantile)
        if value < 0 or (value == 0 and not strict):
            hi = mid
        else:
            lo = mid
    return hi


def _root(statistic: _RankShift, breakpoints: FloatArray, quantile: float) -> float:
    """The shift where the statistic drops through zero.

    The statistic is evaluated only between breakpoints, where no x - mu ties with a y and it is
    monotone in mu; exactly at a breakpoint the merged ties make it jump about, which would let a
    solver stop anywhere. Where it sits exactly at zero over a stretch (the continuity correction
    does that around the estimate) the middle of the stretch is the root: for the estimate this is
    the Hodges-Lehmann median of pairwise differences. Beyond the ends it answers the end itself,
    like R and Kayenta do.
    """
    if statistic(float(breakpoints[0]) - 1.0, quantile) <= 0:
        return float(breakpoints[0])
    if statistic(float(breakpoints[-1]) + 1.0, quantile) >= 0:
        return float(breakpoints[-1])
    gaps = 0.5 * (breakpoints[:-1] + breakpoints[1:])
    # The "after the last breakpoint" gap qualifies for both by the checks above.
    reaches_zero = _first_gap(statistic, gaps, quantile, strict=False)
    goes_below = _first_gap(statistic, gaps, quantile, strict=True)
    return 0.5 * (float(breakpoints[reaches_zero]) + float(breakpoints[goes_below]))


@functools.lru_cache(maxsize=64)
def z_crit(confidence: float) -> float:
    """Two-sided normal quantile for the confidence level."""
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def higher_at_zero(experiment: WeightedSample, control: WeightedSample, confidence: float) -> bool:
    """Whether the interval's lower end can be above 0 at all: a cheap screen, since a lower end at or
    below 0 is never classified High.

    The lower end is above 0 only if every experiment value exceeds every control value (then a
    sample too small for the confidence level answers the lowest shift, as R and Kayenta do), or if
    the statistic is still above the quantile in the gap just past 0 (it only falls as the shift grows).
    """
    x, y = experiment.values, control.values
    if x.min() - y.max() > 0:
        return True
    # Smallest positive x_i - y_j: for each x, the largest y strictly below it.
    below = np.searchsorted(y, x, side="left") - 1
    has = below >= 0
    if not has.any():
        return False
    smallest = float((x[has] - y[below[has]]).min())
    # ">= 0": a statistic exactly at the quantile could start a plateau whose middle is above 0.
    return _RankShift(experiment, control)(smallest / 2.0, z_crit(confidence)) >= 0


def shift_interval(experiment: WeightedSample, control: WeightedSample, confidence: float) -> ShiftInterval:
    """Confidence interval and estimate of the shift experiment - control."""
    breakpoints = np.unique((experiment.values[:, None] - control.values[None, :]).ravel())
    statistic = _RankShift(experiment, control)
    z = z_crit(confidence)
    lower = _root(statistic, breakpoints, z)
    upper = _root(statistic, breakpoints, -z)
    estimate = _root(statistic, breakpoints, 0.0)
    return ShiftInterval(lower, upper, estimate)

"""Two-sample Wilcoxon / Mann-Whitney confidence interval for a location shift, on weighted samples.

This follows R's `wilcox.test(x, y, conf.int=TRUE, exact=FALSE, correct=TRUE)`, which is what
Kayenta's Mann-Whitney classifier ports: the interval is the set of shifts `mu` for which the
normal-approximation statistic of (x - mu) against y (continuity- and tie-corrected) stays inside the
two-sided quantiles; the estimate is the shift where the statistic crosses zero.

Samples are given as (distinct values, counts) so that a latency histogram with a million requests
costs as much as its dozen buckets. The statistic only changes at shifts equal to some x_i - y_j,
so the roots are found exactly by bisection over those breakpoints instead of a numeric solver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import norm

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


def _statistic(x: WeightedSample, y: WeightedSample, mu: float, quantile: float) -> float:
    """(U - nx*ny/2 - continuity) / sigma - quantile, for x shifted down by mu."""
    shifted = x.values - mu
    cum_y = np.concatenate(([0.0], np.cumsum(y.counts)))
    below = cum_y[np.searchsorted(y.values, shifted, side="left")]
    at_or_below = cum_y[np.searchsorted(y.values, shifted, side="right")]
    u = float((x.counts * (below + 0.5 * (at_or_below - below))).sum())
    nx, ny = x.size, y.size
    dz = u - nx * ny / 2.0
    merged_values = np.concatenate((shifted, y.values))
    merged_counts = np.concatenate((x.counts, y.counts))
    _, inverse = np.unique(merged_values, return_inverse=True)
    ties = np.bincount(inverse, weights=merged_counts)
    n = nx + ny
    sigma = np.sqrt(nx * ny / 12.0 * ((n + 1) - float((ties**3 - ties).sum()) / (n * (n - 1))))
    if sigma == 0:
        raise ValueError("cannot compute a confidence interval when all observations are tied")
    correction = 0.5 * float(np.sign(dz))
    return float((dz - correction) / sigma - quantile)


def _root(x: WeightedSample, y: WeightedSample, breakpoints: FloatArray, quantile: float) -> float:
    """The shift where the (non-increasing, stepwise) statistic falls through zero."""
    lo_mu, hi_mu = float(breakpoints[0]), float(breakpoints[-1])
    if _statistic(x, y, lo_mu, quantile) <= 0:
        return lo_mu
    if _statistic(x, y, hi_mu, quantile) >= 0:
        return hi_mu
    # Invariant: statistic just above breakpoints[lo] is > 0 side reached from the left, at [hi] <= 0.
    lo, hi = 0, breakpoints.size - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _statistic(x, y, float(breakpoints[mid]), quantile) > 0:
            lo = mid
        else:
            hi = mid
    # The sign change happens between breakpoints[lo] and breakpoints[hi]; the statistic is flat in
    # between, so the crossing is at one of the two ends: the first one where it is <= 0 is hi, but if
    # the open gap already is <= 0 the jump happened at lo.
    gap = 0.5 * (float(breakpoints[lo]) + float(breakpoints[hi]))
    return float(breakpoints[lo]) if _statistic(x, y, gap, quantile) <= 0 else float(breakpoints[hi])


def shift_interval(experiment: WeightedSample, control: WeightedSample, confidence: float) -> ShiftInterval:
    """Confidence interval and estimate of the shift experiment - control."""
    breakpoints = np.unique((experiment.values[:, None] - control.values[None, :]).ravel())
    z = float(norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    lower = _root(experiment, control, breakpoints, z)
    upper = _root(experiment, control, breakpoints, -z)
    estimate = _root(experiment, control, breakpoints, 0.0)
    return ShiftInterval(lower, upper, estimate)

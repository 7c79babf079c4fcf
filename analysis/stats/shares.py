"""Likelihood ratios for "the canary's share of some event" given how traffic was split.

Two conditional models, both free of the unknown baseline rate (the nuisance cancels when we
condition on the total number of events in the interval):

- `binomial_share_loglr`: canary events among all events ~ Binomial(events, canary share of requests).
  Under the null (equal rates) the true conditional law is hypergeometric, which is smaller in convex
  order (Hoeffding, 1963), so the binomial likelihood ratio is still a supermartingale: valid, and
  nearly exact when events are rare (errors).
- `noncentral_share_loglr`: the exact conditional law of a 2x2 table (Fisher's noncentral
  hypergeometric, parameter = odds ratio). Needed when the event is common ("slower than the median"),
  where the binomial form would throw away half the information.

Each returns an array of shape (intervals, alternatives): the log likelihood ratio of each alternative
against "no difference", one row per interval. Rows sum into an e-process because every row is a
likelihood ratio conditional on everything before it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammaln, logsumexp

FloatArray = NDArray[np.float64]


def binomial_share_loglr(
    canary_events: FloatArray, total_events: FloatArray, canary_share: FloatArray, log_ratio: FloatArray
) -> FloatArray:
    """Log LR of "canary's event rate is exp(log_ratio) times the baseline's" per interval.

    `canary_share` is the canary's fraction of requests in each interval; intervals where an arm
    served nothing carry no information and contribute 0.
    """
    c = np.asarray(canary_events, dtype=float)[:, None]
    n = np.asarray(total_events, dtype=float)[:, None]
    p = np.asarray(canary_share, dtype=float)[:, None]
    theta = np.exp(np.asarray(log_ratio, dtype=float))[None, :]
    informative = (p > 0) & (p < 1) & (n > 0)
    p_safe = np.where(informative, p, 0.5)
    q = theta * p_safe / (theta * p_safe + 1.0 - p_safe)
    out = c * np.log(q / p_safe) + (n - c) * np.log((1.0 - q) / (1.0 - p_safe))
    return np.where(informative, out, 0.0)


def _log_choose(n: FloatArray, k: FloatArray) -> FloatArray:
    result: FloatArray = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
    return result


def noncentral_share_loglr(
    canary_events: FloatArray,
    canary_requests: FloatArray,
    baseline_requests: FloatArray,
    total_events: FloatArray,
    log_odds_ratio: FloatArray,
) -> FloatArray:
    """Exact conditional log LR (Fisher's noncentral hypergeometric) of odds ratio exp(log_odds_ratio).

    Counts are rounded to whole requests: Prometheus' `increase()` extrapolates and returns fractions.
    """
    c = np.rint(np.asarray(canary_events, dtype=float))
    nc = np.rint(np.asarray(canary_requests, dtype=float))
    nb = np.rint(np.asarray(baseline_requests, dtype=float))
    s = np.rint(np.asarray(total_events, dtype=float))
    log_psi = np.asarray(log_ratio_checked(log_odds_ratio), dtype=float)
    lo = np.maximum(0.0, s - nb)
    hi = np.minimum(s, nc)
    c = np.clip(c, lo, hi)
    out = np.zeros((c.size, log_psi.size))
    informative = (hi > lo) & (nc > 0) & (nb > 0)
    if not informative.any():
        return out
    idx = np.flatnonzero(informative)
    width = int((hi[idx] - lo[idx]).max()) + 1
    chunk = max(1, 200_000 // width)
    for start in range(0, idx.size, chunk):
        rows = idx[start:start + chunk]
        x = lo[rows, None] + np.arange(width)[None, :]
        valid = x <= hi[rows, None]
        x_safe = np.where(valid, x, lo[rows, None])
        log_pmf = _log_choose(nc[rows, None], x_safe) + _log_choose(nb[rows, None], s[rows, None] - x_safe)
        log_pmf = np.where(valid, log_pmf, -np.inf)
        log_norm = _log_tilted_sums(log_pmf, log_psi) + lo[rows, None] * log_psi[None, :]
        base = logsumexp(log_pmf, axis=1)[:, None]
        out[rows] = c[rows, None] * log_psi[None, :] - (log_norm - base)
    return out


def _log_tilted_sums(log_pmf: FloatArray, log_psi: FloatArray) -> FloatArray:
    """log sum_k exp(log_pmf[:, k] + k * log_psi[g]) for every row and g.

    A matrix product when the support is short enough for the tilt to stay inside float range
    (fast); the exact log-sum-exp otherwise, and for any row where the product underflowed.
    """
    width = log_pmf.shape[1]
    k = np.arange(width, dtype=float)[:, None]
    shift = (width - 1) * np.maximum(log_psi, 0.0)
    if (width - 1) * float(np.abs(log_psi).max(initial=0.0)) < 600.0:
        row_max = log_pmf.max(axis=1, keepdims=True)
        sums = np.exp(log_pmf - row_max) @ np.exp(k * log_psi[None, :] - shift[None, :])
        with np.errstate(divide="ignore"):
            result = np.log(sums) + row_max + shift[None, :]
        bad = ~np.all(sums > 1e-280, axis=1)
        if bad.any():
            result[bad] = logsumexp(log_pmf[bad][:, :, None] + k[None, :, :] * log_psi[None, None, :], axis=1)
        exact: FloatArray = result
        return exact
    full: FloatArray = logsumexp(log_pmf[:, :, None] + k[None, :, :] * log_psi[None, None, :], axis=1)
    return full


def log_ratio_checked(log_ratio: FloatArray) -> FloatArray:
    values = np.asarray(log_ratio, dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError("log ratio grid: every alternative must be a finite ratio > 0")
    return values

"""Mixture e-processes over a ratio (rate ratio or odds ratio), and the confidence sequence they give.

The per-interval log likelihood ratios are evaluated on a fixed log-spaced grid of ratios that
contains 1. A one-sided test of "ratio <= r0" mixes the alternatives above r0 with fixed prior
weights; by Ville's inequality the running maximum of that mixture exceeds 1/alpha with probability
at most alpha when the null holds, however often we look. Because the grid and the weights never
depend on the data, the e-process is a pure function of the history.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def logsumexp(values: FloatArray, axis: int) -> FloatArray:
    """log(sum(exp(values))) along `axis`, stable, -inf for all -inf slices (scipy's is slow on small arrays)."""
    top = np.max(values, axis=axis, keepdims=True)
    safe_top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        summed = np.log(np.sum(np.exp(values - safe_top), axis=axis, keepdims=True)) + safe_top
    result: FloatArray = np.squeeze(summed, axis=axis)
    return result


@dataclass(frozen=True)
class RatioGrid:
    """Ratios exp(k * step) for k in [-half_width, half_width]; index `half_width` is ratio 1."""

    step: float
    half_width: int

    @property
    def log_ratios(self) -> FloatArray:
        return self.step * np.arange(-self.half_width, self.half_width + 1, dtype=float)

    @property
    def one(self) -> int:
        return self.half_width

    def index_at_or_below(self, ratio: float) -> int:
        """Grid index of the largest ratio <= `ratio` (rounding a margin down only makes a pass harder)."""
        k = int(np.floor(np.log(ratio) / self.step + 1e-9))
        return self.one + max(-self.half_width, min(self.half_width, k))

    def ratio(self, index: int) -> float:
        return float(np.exp(self.step * (index - self.one)))


@dataclass(frozen=True)
class MixturePrior:
    """Prior weights over alternatives `k` grid steps away from the null (k = 1, 2, ...).

    A normal bump on the log-ratio distance: `centre` is the effect we most want to catch quickly,
    `spread` how far around it we still pay attention.
    """

    centre: float  # log ratio distance
    spread: float

    def log_weights(self, step: float, steps: int) -> FloatArray:
        distance = step * np.arange(1, steps + 1, dtype=float)
        log_w = -0.5 * ((distance - self.centre) / self.spread) ** 2
        normalised: FloatArray = log_w - logsumexp(log_w, axis=0)
        return normalised


@dataclass(frozen=True)
class BlendedPrior:
    """A weighted blend of bumps: one narrow bump where detection speed matters most, and a wide one so
    that much larger effects still cross within a look or two. `parts` holds (weight, bump) pairs."""

    parts: tuple[tuple[float, MixturePrior], ...]

    def log_weights(self, step: float, steps: int) -> FloatArray:
        total = sum(weight for weight, _ in self.parts)
        stacked = np.stack([np.log(weight / total) + bump.log_weights(step, steps) for weight, bump in self.parts])
        return logsumexp(stacked, axis=0)


# Fixed (data-independent) log weights over the alternatives 1, 2, ... grid steps from the null.
Prior = MixturePrior | BlendedPrior


@functools.lru_cache(maxsize=64)
def prior_log_weights(prior: Prior, step: float, steps: int) -> FloatArray:
    """`prior.log_weights(step, steps)`, computed once per prior and grid (read-only): a judgement asks
    for them at every look."""
    weights = prior.log_weights(step, steps)
    weights.setflags(write=False)
    return weights


def log_e_above(cumulative: FloatArray, null_index: int, prior: Prior, grid: RatioGrid) -> FloatArray:
    """Log e-process against "ratio <= grid[null_index]", one value per row of `cumulative`.

    `cumulative` holds the running sums of per-interval log LRs (rows: prefixes, columns: grid).
    Alternatives past the grid's edge are dropped, which only lowers the e-value.
    """
    steps = cumulative.shape[1] - 1 - null_index
    if steps <= 0:
        return np.zeros(cumulative.shape[0])
    log_w = prior_log_weights(prior, grid.step, steps)
    alt = cumulative[:, null_index + 1:null_index + 1 + steps]
    result: FloatArray = logsumexp(alt + log_w[None, :], axis=1) - cumulative[:, null_index]
    return result


def log_e_below(cumulative: FloatArray, null_index: int, prior: Prior, grid: RatioGrid) -> FloatArray:
    """Log e-process against "ratio >= grid[null_index]" (alternatives below it)."""
    steps = null_index
    if steps <= 0:
        return np.zeros(cumulative.shape[0])
    log_w = prior_log_weights(prior, grid.step, steps)
    alt = cumulative[:, null_index - 1::-1][:, :steps]
    result: FloatArray = logsumexp(alt + log_w[None, :], axis=1) - cumulative[:, null_index]
    return result


@functools.lru_cache(maxsize=32)
def _log_weight_matrix(grid: RatioGrid, prior: Prior, above: bool) -> FloatArray:
    """Row j: the prior's log weights on the alternatives of null j (above or below it), -inf elsewhere."""
    size = 2 * grid.half_width + 1
    matrix = np.full((size, size), -np.inf)
    for j in range(size):
        steps = size - 1 - j if above else j
        if steps <= 0:
            continue
        log_w = prior.log_weights(grid.step, steps)
        if above:
            matrix[j, j + 1:] = log_w
        else:
            matrix[j, :j][::-1] = log_w
    matrix.setflags(write=False)
    return matrix


def _log_e_every_null(row: FloatArray, grid: RatioGrid, prior: Prior, above: bool) -> FloatArray:
    """`log_e_above` / `log_e_below` at the latest look for every grid ratio as the null, at once."""
    weights = _log_weight_matrix(grid, prior, above)
    summed = logsumexp(row[None, :] + weights, axis=1)
    result: FloatArray = np.where(np.isfinite(summed), summed - row, 0.0)
    return result


def confidence_bounds(
    cumulative_last: FloatArray, above: Prior, below: Prior, grid: RatioGrid, log_threshold: float
) -> tuple[float, float]:
    """Anytime-valid (lower, upper) bounds on the ratio at the latest look.

    Lower: the largest grid ratio r such that "ratio <= r" is rejected (mixing `above` it); upper: the
    smallest r such that "ratio >= r" is rejected (mixing `below` it). Using the judge's own priors
    keeps the bounds consistent with its fail and pass decisions. Each side uses the given threshold
    (so the two-sided level is 2 / exp(log_threshold)). Returns (0, inf) sides when nothing is rejected.
    """
    row = np.asarray(cumulative_last, dtype=float)
    up = _log_e_every_null(row, grid, above, above=True)
    down = _log_e_every_null(row, grid, below, above=False)
    rejected_low = np.flatnonzero(up >= log_threshold)
    rejected_high = np.flatnonzero(down >= log_threshold)
    lower = grid.ratio(int(rejected_low.max())) if rejected_low.size else 0.0
    upper = grid.ratio(int(rejected_high.min())) if rejected_high.size else float("inf")
    return lower, upper

"""Prometheus-style cumulative histograms: picking split points, quantiles, representative samples.

Bucket counts arrive as cumulative counts per upper bound (`le`), the last bound being +Inf, exactly
as Prometheus exposes `_bucket` series. Functions accept arrays with the bucket axis last so they
vectorise over intervals and releases.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def split_indices(pooled_cumulative: FloatArray, levels: Sequence[float]) -> IntArray:
    """For each quantile level, the finite bucket bound whose pooled cumulative share is closest.

    Returns indices with a trailing axis of len(levels). Only bounds strictly inside the data are
    eligible (some requests at or below and some above), otherwise the split says nothing; where no
    bound qualifies the index is -1.
    """
    cum = np.asarray(pooled_cumulative, dtype=float)
    total = cum[..., -1:]
    finite = cum[..., :-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, finite / np.where(total > 0, total, 1.0), np.nan)
    inside = (finite > 0) & (finite < total)
    out = np.empty((*cum.shape[:-1], len(levels)), dtype=np.int64)
    for j, level in enumerate(levels):
        distance = np.where(inside, np.abs(share - level), np.inf)
        best = np.argmin(distance, axis=-1)
        found = np.take_along_axis(inside, best[..., None], axis=-1)[..., 0]
        out[..., j] = np.where(found, best, -1)
    return out


def quantile(bounds: Sequence[float], cumulative: Sequence[float], q: float) -> float | None:
    """`histogram_quantile` semantics: linear interpolation inside the bucket holding rank q*total.

    The first bucket starts at 0; a rank that falls in the +Inf bucket answers the largest finite
    bound. None when the histogram is empty.
    """
    total = float(cumulative[-1]) if len(cumulative) else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank:
            if not np.isfinite(bound):
                return float(lower_bound)
            if count == lower_count:
                return float(bound)
            return float(lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count))
        lower_bound, lower_count = float(bound), float(count)
    return float(lower_bound)


@functools.lru_cache(maxsize=32)
def representative_values(bounds: tuple[float, ...], points: int = 8) -> tuple[FloatArray, FloatArray]:
    """Latencies standing for the requests of each bucket, and the share of the bucket each one carries.

    Requests are spread evenly inside their bucket (`points` equally spaced values, each carrying
    1/points of the bucket's count), the same assumption `histogram_quantile` makes when it
    interpolates. The first bucket starts at 0; the +Inf bucket is represented by the largest finite
    bound, the only value Prometheus itself would report there.
    Returns (values, owner) where owner[k] is the bucket index value k belongs to (cached per layout:
    treat the arrays as read-only).
    """
    finite = [b for b in bounds if np.isfinite(b)]
    values: list[float] = []
    owner: list[int] = []
    lower = 0.0
    for index, bound in enumerate(bounds):
        if np.isfinite(bound):
            values.extend(lower + (k + 0.5) / points * (bound - lower) for k in range(points))
            owner.extend([index] * points)
            lower = bound
        else:
            values.append(finite[-1] if finite else 0.0)
            owner.append(index)
    return np.array(values, dtype=float), np.array(owner, dtype=np.int64)


def spread_counts(per_bucket_counts: FloatArray, owner: FloatArray) -> FloatArray:
    """Counts for `representative_values`: each bucket's count shared evenly among its points."""
    counts = np.asarray(per_bucket_counts, dtype=float)
    points_per_bucket = np.bincount(owner, minlength=counts.size)
    result: FloatArray = counts[owner] / points_per_bucket[owner]
    return result


def per_bucket(cumulative: FloatArray) -> FloatArray:
    """Non-cumulative counts per bucket (negative differences from counter noise clipped to 0)."""
    cum = np.asarray(cumulative, dtype=float)
    diff = np.diff(cum, axis=-1, prepend=0.0)
    result: FloatArray = np.maximum(diff, 0.0)
    return result

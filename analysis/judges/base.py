"""What every judge shares: the protocol the controller calls, option checking, history as arrays."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from analysis.judges.running import Judgement
from analysis.model import Interval, Outcome, Verdict

FloatArray = NDArray[np.float64]
EvidenceDict = dict[str, float | int | str | bool | None]

ERROR_RATE = "error-rate"
LATENCY = "latency"
BUILTIN_METRICS = (ERROR_RATE, LATENCY)


class Judge(Protocol):
    """A pure function of the history: the same intervals always give the same verdicts (`follow()`
    keeps running statistics per release and gives the same verdicts as `evaluate`)."""

    @property
    def name(self) -> str: ...

    @property
    def alpha(self) -> float: ...

    @property
    def metrics(self) -> tuple[str, ...]: ...

    def evaluate(self, history: Sequence[Interval]) -> list[Verdict]:
        """One verdict per metric, judging every interval since the canary started (oldest first)."""
        ...

    def outcomes(self, history: Sequence[Interval]) -> list[Outcome]:
        """The combined outcome after each look, as `combine(evaluate(prefix))` would give it.

        Computed in one pass where the judge allows it (replay, backtest and the benchmark use this).
        Once a look fails, later looks report fail as well: the controller has rolled back by then.
        """
        ...

    def follow(self) -> Judgement[Any]:
        """Running statistics for one release: its `evaluate(history)` gives this judge's verdicts and
        costs what the intervals new since the last look cost (the controller's path)."""
        ...


def check_alpha(alpha: float) -> float:
    if not isinstance(alpha, int | float) or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha: must be a probability strictly between 0 and 1, got {alpha!r}")
    return float(alpha)


def check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    chosen = tuple(metrics)
    if not chosen:
        raise ValueError(f"metrics: name at least one of {', '.join(BUILTIN_METRICS)}")
    for metric in chosen:
        if metric not in BUILTIN_METRICS:
            raise ValueError(f"metrics: unknown metric {metric!r}; this judge knows {', '.join(BUILTIN_METRICS)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"metrics: {list(chosen)} names a metric twice")
    return chosen


def number_option(options: Mapping[str, object], name: str, default: float, *, low: float = 0.0,
                  high: float = math.inf, inclusive_low: bool = False) -> float:
    """Read a numeric option, naming the option and the accepted range when it is wrong."""
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise ValueError(f"{name}: must be a number, got {value!r}")
    number = float(value)
    too_low = number < low if inclusive_low else number <= low
    if too_low or number > high:
        bracket = "[" if inclusive_low else "("
        raise ValueError(f"{name}: must be in {bracket}{low}, {high}], got {number}")
    return number


def reject_unknown(options: Mapping[str, object], known: Sequence[str], judge: str) -> None:
    for name in options:
        if name not in known:
            raise ValueError(f"{name}: not an option of the {judge} judge (options: {', '.join(known)})")


@dataclass(frozen=True)
class HistoryArrays:
    """The history as columns. Latency columns cover the intervals whose buckets match `bounds`."""

    t: FloatArray
    weight: FloatArray
    baseline_requests: FloatArray
    baseline_errors: FloatArray
    canary_requests: FloatArray
    canary_errors: FloatArray
    bounds: tuple[float, ...]
    has_buckets: NDArray[np.bool_]
    baseline_buckets: FloatArray  # (intervals, bounds), cumulative; zeros where has_buckets is False
    canary_buckets: FloatArray

    @property
    def looks(self) -> int:
        return int(self.t.size)


def bucket_bounds(interval: Interval) -> tuple[float, ...]:
    """The interval's bucket layout if both arms have buckets, else ()."""
    if interval.baseline.buckets and interval.canary.buckets:
        return tuple(b for b, _ in interval.baseline.buckets)
    return ()


def history_bounds(history: Sequence[Interval]) -> tuple[float, ...]:
    """The bucket layout of a history: the first one seen in both arms."""
    for interval in history:
        bounds = bucket_bounds(interval)
        if bounds:
            return bounds
    return ()


def as_arrays(history: Sequence[Interval], bounds: tuple[float, ...] | None = None) -> HistoryArrays:
    """Columns of the history. Counts below 0 (counter resets) are treated as 0.

    The bucket layout is the first one seen in both arms (or `bounds`, that of a longer history this
    one is part of); an interval with another layout (a changed histogram) carries no latency
    information rather than being misread.
    """
    size = len(history)
    if bounds is None:
        bounds = history_bounds(history)
    has = np.zeros(size, dtype=bool)
    base_b = np.zeros((size, len(bounds)))
    can_b = np.zeros((size, len(bounds)))
    if bounds:
        same = [i for i, interval in enumerate(history)
                if len(interval.baseline.buckets) == len(bounds) == len(interval.canary.buckets)
                and tuple(b for b, _ in interval.baseline.buckets) == bounds
                and tuple(b for b, _ in interval.canary.buckets) == bounds]
        if same:
            has[same] = True
            base_b[same] = np.array([[c for _, c in history[i].baseline.buckets] for i in same], dtype=float)
            can_b[same] = np.array([[c for _, c in history[i].canary.buckets] for i in same], dtype=float)
    counts = np.array([(i.t, i.weight, i.baseline.requests, i.baseline.errors, i.canary.requests, i.canary.errors)
                       for i in history], dtype=float).reshape(size, 6)
    arm_counts = np.maximum(counts[:, 2:], 0.0)
    return HistoryArrays(
        t=counts[:, 0],
        weight=counts[:, 1],
        baseline_requests=arm_counts[:, 0],
        baseline_errors=arm_counts[:, 1],
        canary_requests=arm_counts[:, 2],
        canary_errors=arm_counts[:, 3],
        bounds=bounds,
        has_buckets=has,
        baseline_buckets=np.maximum(base_b, 0.0),
        canary_buckets=np.maximum(can_b, 0.0),
    )


def finite_or_none(value: float) -> float | None:
    """Evidence must stay JSON: infinities and NaN become null."""
    return float(value) if math.isfinite(value) else None


def combined_outcome(outcomes: Sequence[Outcome]) -> Outcome:
    """The same precedence as `analysis.model.combine`, without building verdicts."""
    for wanted in (Outcome.FAIL, Outcome.NODATA, Outcome.CONTINUE):
        if wanted in outcomes:
            return wanted
    return Outcome.PASS if outcomes else Outcome.NODATA

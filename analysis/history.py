"""Turning Prometheus range-query results into each release's history of intervals.

Every release is measured on one shared time grid: interval ends are whole multiples of the step
since the epoch, so the boundaries stay put from one analysis tick to the next and a tick only
adds intervals. A release gets the intervals that lie wholly after its canary started; each one
holds both arms' counts for that interval alone (`increase` over exactly one step).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.judges.base import Judge
from analysis.judges.running import Judgement
from analysis.model import ArmCounts, Interval, Outcome, Verdict, combine
from analysis.queries import BATCH_LABEL, Arm, Preset, ReleaseWindow, is_error_code

ReleaseKey = tuple[str, str]  # (namespace, name)
# One series of a range query as Prometheus returns it: {"metric": {...}, "values": [[t, "v"], ...]}
RangeSeries = Mapping[str, Any]


@dataclass(frozen=True)
class History:
    """What the metrics say about one release: its intervals (oldest first), or why there are none.

    `error` set means nodata with that reason (Prometheus unreachable, a query failed, no series);
    it is never a pass.
    """

    intervals: list[Interval] = field(default_factory=list)
    error: str | None = None

    @property
    def nodata(self) -> bool:
        return self.error is not None

    def verdict(self, judge: Judge | Judgement[Any]) -> Verdict:
        """The judge's combined verdict; nodata with the reason when the metrics could not be read."""
        return combine(self.verdicts(judge))

    def verdicts(self, judge: Judge | Judgement[Any]) -> list[Verdict]:
        """One verdict per metric; a single nodata with the reason when the metrics could not be read.
        `judge` may be a release's running judgement (`Judge.follow()`)."""
        if self.error is not None:
            return [Verdict(Outcome.NODATA, "all", self.error, {"source_error": True})]
        return judge.evaluate(self.intervals)


@dataclass(frozen=True)
class Grid:
    """Interval ends `first, first + step, ..., last` in unix seconds."""

    first: float
    last: float
    step: float

    @property
    def size(self) -> int:
        return round((self.last - self.first) / self.step) + 1

    def end(self, index: int) -> float:
        return self.first + index * self.step

    def chunks(self, max_points: int) -> list[Grid]:
        """Split into grids of at most `max_points` points (Prometheus caps points per series)."""
        pieces: list[Grid] = []
        start = 0
        while start < self.size:
            stop = min(self.size, start + max_points) - 1
            pieces.append(Grid(self.end(start), self.end(stop), self.step))
            start = stop + 1
        return pieces


def first_full_interval_end(started_at: float, step: float) -> float:
    """The earliest grid point whose interval lies wholly after `started_at`."""
    return math.ceil(started_at / step - 1e-9) * step + step


def grid_for(windows: Sequence[ReleaseWindow], now: float, step: float) -> Grid | None:
    """The shared grid up to `now`, from the earliest full interval of any release (None if none yet)."""
    if not windows:
        return None
    last = math.floor(now / step + 1e-9) * step
    first = min(first_full_interval_end(w.started_at, step) for w in windows)
    if first > last:
        return None
    return Grid(first, last, step)


@dataclass
class _ArmTally:
    """Counts for one arm of one release, per grid point (mutable while results are folded in)."""

    size: int
    seen: bool = False
    requests: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    buckets: dict[float, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.requests = [0.0] * self.size
        self.errors = [0.0] * self.size

    def bucket(self, bound: float) -> list[float]:
        return self.buckets.setdefault(bound, [0.0] * self.size)

    def counts(self, index: int) -> ArmCounts:
        bounds = sorted(self.buckets)
        cumulative: list[tuple[float, float]] = []
        running = 0.0
        for bound in bounds:
            # Extrapolation in increase() can leave a bucket a hair below the one before it.
            running = max(running, self.buckets[bound][index])
            cumulative.append((bound, running))
        return ArmCounts(self.requests[index], self.errors[index], tuple(cumulative))


class Tally:
    """Folds range-query results into per-release, per-arm counts on one grid."""

    def __init__(self, windows: Sequence[ReleaseWindow], grid: Grid) -> None:
        self.grid = grid
        self.windows = list(windows)
        self._by_namespace: dict[str, list[ReleaseWindow]] = {}
        for window in self.windows:
            self._by_namespace.setdefault(window.namespace, []).append(window)
        self._arms: dict[tuple[ReleaseKey, Arm], _ArmTally] = {
            (w.key, arm): _ArmTally(grid.size) for w in self.windows for arm in Arm
        }

    def arm(self, key: ReleaseKey, arm: Arm) -> _ArmTally:
        return self._arms[(key, arm)]

    def _points(self, series: RangeSeries) -> list[tuple[int, float]]:
        # The hot loop of a tick (every point of every series): plain locals, no method calls.
        first, step, size = self.grid.first, self.grid.step, self.grid.size
        points: list[tuple[int, float]] = []
        for timestamp, raw in series.get("values", []):
            position = (float(timestamp) - first) / step
            index = round(position)
            value = float(raw)
            if 0 <= index < size and abs(position - index) <= 1e-6 and math.isfinite(value):
                points.append((index, value))
        return points

    def _owners(self, preset: Preset, labels: Mapping[str, str]) -> Iterable[_ArmTally]:
        # Only releases in the series' namespace can own it; envoy has no namespace label, so all.
        candidates = self.windows
        for label in ("namespace", "destination_workload_namespace"):
            if label in labels:
                candidates = self._by_namespace.get(labels[label], [])
                break
        for window in candidates:
            arm = preset.arm_of(window, labels)
            if arm is not None:
                yield self.arm(window.key, arm)

    def add_requests(self, preset: Preset, results: Iterable[RangeSeries]) -> None:
        for series in results:
            labels = series.get("metric", {})
            error = is_error_code(labels.get(preset.code_label, ""))
            for tally in self._owners(preset, labels):
                tally.seen = True
                for index, value in self._points(series):
                    tally.requests[index] += value
                    if error:
                        tally.errors[index] += value

    def add_buckets(self, preset: Preset, results: Iterable[RangeSeries]) -> None:
        for series in results:
            labels = series.get("metric", {})
            bound = _bucket_bound(labels.get("le"), preset.bucket_unit_seconds)
            if bound is None:
                continue
            for tally in self._owners(preset, labels):
                column = tally.bucket(bound)
                for index, value in self._points(series):
                    column[index] += value

    def add_custom(self, kind: str, results: Iterable[RangeSeries],
                   owners: Mapping[str, tuple[ReleaseKey, Arm]], bucket_unit_seconds: float = 1.0) -> None:
        """Results of a batched custom query; `owners` maps each batch key to its release and arm."""
        for series in results:
            labels = series.get("metric", {})
            owner = owners.get(labels.get(BATCH_LABEL, ""))
            if owner is None:
                continue
            tally = self.arm(*owner)
            tally.seen = True
            if kind == "buckets":
                bound = _bucket_bound(labels.get("le"), bucket_unit_seconds)
                if bound is None:
                    continue
                target = tally.bucket(bound)
            else:
                target = tally.requests if kind == "requests" else tally.errors
            for index, value in self._points(series):
                target[index] += value

    def seen(self, window: ReleaseWindow) -> bool:
        """Whether any series of either arm came back at all (none usually means a misconfiguration)."""
        return self.arm(window.key, Arm.BASELINE).seen or self.arm(window.key, Arm.CANARY).seen

    def intervals(self, window: ReleaseWindow) -> list[Interval]:
        """The release's full intervals on this grid, oldest first."""
        baseline, canary = self.arm(window.key, Arm.BASELINE), self.arm(window.key, Arm.CANARY)
        first = first_full_interval_end(window.started_at, self.grid.step)
        intervals: list[Interval] = []
        for index in range(self.grid.size):
            end = self.grid.end(index)
            if end < first - 1e-6:
                continue
            base, can = baseline.counts(index), canary.counts(index)
            total = base.requests + can.requests
            weight = 100.0 * can.requests / total if total > 0 else 0.0
            intervals.append(Interval(t=end - window.started_at, weight=weight, baseline=base, canary=can))
        return intervals


def no_series(window: ReleaseWindow, source: str) -> History:
    return History(error=(
        f"no series for {window.primary} or {window.canary} in namespace {window.namespace} "
        f"from {source}: check that Prometheus scrapes them and that the labels fit the preset"
    ))


def _bucket_bound(raw: str | None, unit_seconds: float) -> float | None:
    if raw is None:
        return None
    try:
        bound = float(raw)
    except ValueError:
        return None
    return bound if math.isinf(bound) else bound * unit_seconds

"""The judging hook backed by the analysis engine: Prometheus histories judged statistically, plus the
release's own guard rails (custom PromQL with a max or min).

Histories are fetched for every active release at once (one batch of queries per Prometheus, preset
and step), at most once per half analysis interval, so the number of queries per tick does not grow
with the number of releases; guard rails likewise share one query per distinct template. Judges are
pure functions of the history, so a restarted controller reaches the same verdict.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import requests

from analysis.history import History
from analysis.judges import Judge as StatisticalJudge
from analysis.judges import make_judge
from analysis.model import Outcome, Verdict, combine
from analysis.prometheus import PrometheusSource, Reading
from analysis.queries import ReleaseWindow as MetricsWindow
from canary.config import AnalysisSpec, CustomMetric
from canary.judging import ReleaseWindow

Group = tuple[str, str, int]  # (Prometheus URL, preset, step seconds)
Key = tuple[str, str]


@dataclass(frozen=True)
class _Fetched:
    at: float
    histories: dict[Key, History]
    windows: dict[Key, MetricsWindow]  # what each history was fetched for


@dataclass(frozen=True)
class _Gates:
    window: MetricsWindow
    metrics: tuple[CustomMetric, ...]


@dataclass(frozen=True)
class _Read:
    at: float
    readings: dict[Key, dict[str, Reading]]
    asked: dict[Key, _Gates]  # what each release's readings were read for


class AnalysisJudge:
    def __init__(self, prometheus_url: str, timeout_seconds: float = 5.0, default_preset: str = "app",
                 session: requests.Session | None = None) -> None:
        # 5 s: the first tick after a restart fetches every release's whole history at once.
        self.url = prometheus_url
        self.session = session
        self.timeout_seconds = timeout_seconds
        self.default_preset = default_preset
        self._lock = threading.Lock()
        self._sources: dict[tuple[str, str], PrometheusSource] = {}
        self._active: dict[Group, dict[Key, MetricsWindow]] = {}
        self._fetched: dict[Group, _Fetched] = {}
        self._gated: dict[Group, dict[Key, _Gates]] = {}
        self._read: dict[Group, _Read] = {}
        self._judges: dict[tuple[str, float, tuple[str, ...]], StatisticalJudge] = {}

    def verdict(self, window: ReleaseWindow, spec: AnalysisSpec, now: float) -> Verdict:
        group: Group = (spec.prometheus or self.url, spec.preset or self.default_preset,
                        max(1, round(spec.interval_seconds)))
        metrics_window = MetricsWindow(window.namespace, window.name, window.primary, window.canary,
                                       window.started_at)
        verdicts: list[Verdict] = []
        if spec.metrics or not spec.custom:
            verdicts.extend(self._statistical(metrics_window, spec, group, now))
        if spec.custom:
            verdicts.extend(self._guard_rails(_Gates(metrics_window, spec.custom), group, now))
        return combine(verdicts)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            for members in self._active.values():
                members.pop((namespace, name), None)
            for fetched in self._fetched.values():
                fetched.histories.pop((namespace, name), None)
            for gated in self._gated.values():
                gated.pop((namespace, name), None)
            for read in self._read.values():
                read.readings.pop((namespace, name), None)

    def _statistical(self, metrics_window: MetricsWindow, spec: AnalysisSpec, group: Group,
                     now: float) -> list[Verdict]:
        try:
            judge = self._judge(spec.judge, spec.alpha, spec.metrics)
        except ValueError as exc:
            return [Verdict(Outcome.NODATA, "all", f"analysis misconfigured: {exc}")]
        key = metrics_window.key
        with self._lock:
            members = self._active.setdefault(group, {})
            members[key] = metrics_window
            fetched = self._fetched.get(group)
            # A fetch made for an earlier release of the same Deployment (another start time) is not
            # evidence about this one.
            stale = (fetched is None or now - fetched.at >= group[2] / 2 or key not in fetched.histories
                     or fetched.windows.get(key) != metrics_window)
            if stale:
                fetched = _Fetched(now, self._source(group).histories(list(members.values()), now, group[2]),
                                   dict(members))
                self._fetched[group] = fetched
        assert fetched is not None
        history = fetched.histories.get(key, History(error="no history for this release"))
        return history.verdicts(judge)

    def _guard_rails(self, gates: _Gates, group: Group, now: float) -> list[Verdict]:
        """Each custom metric's latest value for the canary against its max / min (Flagger-style).

        The value is read over the last analysis interval; no value is nodata (the step holds), never
        a pass."""
        key = gates.window.key
        with self._lock:
            members = self._gated.setdefault(group, {})
            members[key] = gates
            read = self._read.get(group)
            stale = (read is None or now - read.at >= group[2] / 2 or key not in read.readings
                     or read.asked.get(key) != gates)
            if stale:
                queries = {g.window: {m.name: m.query for m in g.metrics} for g in members.values()}
                read = _Read(now, self._source(group).values(queries, now, group[2]), dict(members))
                self._read[group] = read
        assert read is not None
        readings = read.readings.get(key, {})
        return [guard_rail_verdict(metric, readings.get(metric.name, Reading(None, "not read yet")))
                for metric in gates.metrics]

    def _source(self, group: Group) -> PrometheusSource:
        url, preset, _ = group
        source = self._sources.get((url, preset))
        if source is None:
            source = PrometheusSource(url, preset, timeout_seconds=self.timeout_seconds, session=self.session)
            self._sources[(url, preset)] = source
        return source

    def _judge(self, name: str, alpha: float, metrics: Sequence[str]) -> StatisticalJudge:
        key = (name, alpha, tuple(metrics))
        judge = self._judges.get(key)
        if judge is None:
            judge = make_judge(name, alpha=alpha, metrics=tuple(metrics))
            self._judges[key] = judge
        return judge


def guard_rail_verdict(metric: CustomMetric, reading: Reading) -> Verdict:
    evidence: Mapping[str, float | None] = {"value": reading.value, "max": metric.max, "min": metric.min}
    if reading.value is None:
        return Verdict(Outcome.NODATA, metric.name, f"no value: {reading.error}", dict(evidence))
    value = reading.value
    if metric.max is not None and value > metric.max:
        return Verdict(Outcome.FAIL, metric.name, f"{value:.6g} is above its max {metric.max:g}", dict(evidence))
    if metric.min is not None and value < metric.min:
        return Verdict(Outcome.FAIL, metric.name, f"{value:.6g} is below its min {metric.min:g}", dict(evidence))
    return Verdict(Outcome.PASS, metric.name, f"{value:.6g} is within its limits", dict(evidence))

"""The judging hook backed by the analysis engine: Prometheus histories judged statistically, plus the
release's own guard rails (custom PromQL with a max or min).

Histories are fetched for every active release at once (one batch of queries per Prometheus, preset
and step), at most once per half analysis interval, so the number of queries per tick does not grow
with the number of releases, nor with when they started: a release that joins between two ticks waits
for the next one (its verdict is nodata until then, which holds the step). Guard rails likewise share
one query per distinct template.

Each release's history is judged by a `Judgement` that keeps the judge's running statistics and adds
only the intervals new since the last look (and the recent ones Prometheus revised), so a look costs
the same at any age of the release. Judges decide as pure functions of the history would, so a
restarted controller, which starts from an empty judgement, reaches the same verdict.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import requests

from analysis.history import History
from analysis.judges import Judge as StatisticalJudge
from analysis.judges import make_judge
from analysis.judges.running import Judgement
from analysis.model import Outcome, Verdict, combine
from analysis.prometheus import PrometheusSource, PrometheusUnavailable, Reading, promql_parse_error
from analysis.queries import ReleaseWindow as MetricsWindow
from analysis.queries import TemplateError, render_placeholder
from canary.config import AnalysisSpec, CustomMetric
from canary.judging import ReleaseWindow

Group = tuple[str, str, int]  # (Prometheus URL, preset, step seconds)
Key = tuple[str, str]
Asked = TypeVar("Asked")
Result = TypeVar("Result")


@dataclass(frozen=True)
class _Gates:
    window: MetricsWindow
    metrics: tuple[CustomMetric, ...]


@dataclass
class _Followed:
    """One release's running judgement, for the window and judge it was made for; one look at a time."""

    window: MetricsWindow
    judge: StatisticalJudge
    judgement: Judgement[Any]
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Waiting:
    """A release joined its group between two batched reads: it is read with the others at the next."""

    due_in_seconds: float

    @property
    def reason(self) -> str:
        return (f"waiting for the next batched Prometheus read (due in {max(0.0, self.due_in_seconds):.0f} s): "
                "this release joined after the last one")


class _Batch(Generic[Asked, Result]):
    """One group's batched reads for all its active releases (guarded by the judge's lock).

    Reads happen on ticks: the first request at least `max_age` after the last read reads every
    member at once, and requests until the next tick reuse that read. A release that joins between
    ticks, or now asks for something the last read was not made for (a new release of the same
    Deployment, other guard rails: a read for another start time is not evidence about this one),
    waits for the next tick. So a tick's queries do not depend on how many releases there are nor on
    when they started, and a joining release never makes the others be read again."""

    def __init__(self) -> None:
        self.members: dict[Key, Asked] = {}
        self.at = -math.inf
        self.results: dict[Key, Result] = {}
        self.asked: dict[Key, Asked] = {}

    def get(self, key: Key, asked: Asked, now: float, max_age: float,
            fetch: Callable[[list[Asked]], Mapping[Key, Result]]) -> Result | Waiting | None:
        self.members[key] = asked
        if now - self.at >= max_age:
            self.results = dict(fetch(list(self.members.values())))
            self.at, self.asked = now, dict(self.members)
        elif key not in self.asked or self.asked[key] != asked:
            return Waiting(self.at + max_age - now)
        return self.results.get(key)

    def forget(self, key: Key) -> None:
        self.members.pop(key, None)
        self.results.pop(key, None)
        self.asked.pop(key, None)


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
        self._histories: dict[Group, _Batch[MetricsWindow, History]] = {}
        self._followed: dict[Key, _Followed] = {}
        self._rails: dict[Group, _Batch[_Gates, dict[str, Reading]]] = {}
        self._judges: dict[tuple[str, float, tuple[str, ...]], StatisticalJudge] = {}
        self._parsed: dict[tuple[str, str], str | None] = {}  # (Prometheus, guard-rail template) -> parse error

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

    def config_error(self, spec: AnalysisSpec, namespace: str, name: str) -> str | None:
        """A guard rail's PromQL that the release's own Prometheus cannot parse (asked once per template,
        rendered on placeholder values). An unreachable Prometheus says nothing about the query: no
        error then, and it is asked again next time."""
        url = spec.prometheus or self.url
        for metric in spec.custom:
            key = (url, metric.query)
            with self._lock:
                known = key in self._parsed
                problem = self._parsed.get(key)
            if not known:
                try:
                    problem = promql_parse_error(url, render_placeholder(metric.query), self.timeout_seconds,
                                                 session=self.session)
                except (PrometheusUnavailable, TemplateError):
                    continue
                with self._lock:
                    self._parsed[key] = problem
            if problem is not None:
                return (f"weir.dev/rollout.analysis.metrics[name={metric.name[:60]}].query: Prometheus at {url} "
                        f"cannot parse it ({problem[:300]}). Fix: correct the PromQL; it was checked with every "
                        "{{variable}} filled in")
        return None

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            for histories in self._histories.values():
                histories.forget((namespace, name))
            self._followed.pop((namespace, name), None)
            for rails in self._rails.values():
                rails.forget((namespace, name))

    def _statistical(self, metrics_window: MetricsWindow, spec: AnalysisSpec, group: Group,
                     now: float) -> list[Verdict]:
        try:
            judge = self._judge(spec.judge, spec.alpha, spec.metrics)
        except ValueError as exc:
            return [Verdict(Outcome.NODATA, "all", f"analysis misconfigured: {exc}")]
        with self._lock:
            history = self._histories.setdefault(group, _Batch()).get(
                metrics_window.key, metrics_window, now, group[2] / 2,
                lambda windows: self._source(group).histories(windows, now, group[2]))
            followed = self._followed.get(metrics_window.key)
            if followed is None or followed.window != metrics_window or followed.judge != judge:
                followed = _Followed(metrics_window, judge, judge.follow())
                self._followed[metrics_window.key] = followed
        if isinstance(history, Waiting):
            return [Verdict(Outcome.NODATA, "all", history.reason, {"waiting_for_read": True})]
        with followed.lock:
            return (history or History(error="no history for this release")).verdicts(followed.judgement)

    def _guard_rails(self, gates: _Gates, group: Group, now: float) -> list[Verdict]:
        """Each custom metric's latest value for the canary against its max / min (Flagger-style).

        The value is read over the last analysis interval; no value is nodata (the step holds), never
        a pass."""
        with self._lock:
            readings = self._rails.setdefault(group, _Batch()).get(
                gates.window.key, gates, now, group[2] / 2,
                lambda asked: self._source(group).values(
                    {g.window: {m.name: m.query for m in g.metrics} for g in asked}, now, group[2]))
        if isinstance(readings, Waiting):
            return [guard_rail_verdict(metric, Reading(None, readings.reason)) for metric in gates.metrics]
        return [guard_rail_verdict(metric, (readings or {}).get(metric.name, Reading(None, "not read yet")))
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
    evidence: dict[str, float | None] = {"value": reading.value, "max": metric.max, "min": metric.min}
    value = reading.value
    if value is None:
        outcome, reason = Outcome.NODATA, f"no value: {reading.error}"
    elif metric.max is not None and value > metric.max:
        outcome, reason = Outcome.FAIL, f"{value:.6g} is above its max {metric.max:g}"
    elif metric.min is not None and value < metric.min:
        outcome, reason = Outcome.FAIL, f"{value:.6g} is below its min {metric.min:g}"
    else:
        outcome, reason = Outcome.PASS, f"{value:.6g} is within its limits"
    return Verdict(outcome, metric.name, reason, dict(evidence))

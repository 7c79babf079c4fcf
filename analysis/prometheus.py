"""Per-release histories from Prometheus, batched across releases.

    source = PrometheusSource("http://prometheus:9090", preset="app", timeout_seconds=2.0)
    results = source.histories(windows, now=time.time(), step_seconds=10.0)
    results[("shop", "web")].intervals   # or .error: why this release has no data

One analysis tick sends one range query per kind of data (requests by status code, latency
buckets) for all releases together, whatever their number: the preset's `sum by (...)` keeps the
labels that tell releases and arms apart, and the split happens here. Custom PromQL is batched the
same way (every release's copy tagged and joined with `or`). A long range is cut into pieces of at
most `MAX_POINTS` steps, the limit Prometheus puts on one range query.

Intervals that ended more than `settle_seconds` ago are kept between ticks (scrapes have landed by
then), so a tick asks only for recent data: its cost does not grow with how long releases have run.

Nothing here raises on a Prometheus failure: an unreachable server, a timeout or a rejected query
becomes `History.error` for every release it concerns, which judges treat as nodata.
"""

from __future__ import annotations

import ast
import asyncio
import json
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
import urllib3
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from analysis.history import (
    Grid,
    History,
    RangeSeries,
    ReleaseKey,
    Tally,
    first_full_interval_end,
    grid_for,
    no_series,
)
from analysis.model import Interval
from analysis.queries import (
    BATCH_LABEL,
    Arm,
    CustomMetrics,
    Preset,
    ReleaseWindow,
    TemplateError,
    batched_custom_query,
    promql_duration,
    template_values,
)
from analysis.queries import preset as preset_named

MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series in one range query


@dataclass(frozen=True)
class _Settled:
    intervals: list[Interval]
    seen: bool


@dataclass(frozen=True)
class Reading:
    """One custom query's value for one release at one moment: a number, or nodata and why."""

    value: float | None
    error: str | None = None


class QueryFailed(Exception):
    """Prometheus could not answer; the message says why, in words fit for a release's status."""


class PrometheusSource:
    """Request counts and latency buckets per release and arm, from one Prometheus server.

    `preset` names a built-in preset (`app`, `nginx`, `istio`, `envoy`), or pass a `Preset` or
    `CustomMetrics`. `session` lets callers add auth, proxies or hooks (tests count requests
    with a response hook). Calls from several threads are served one at a time.
    """

    def __init__(self, url: str, preset: str | Preset | CustomMetrics = "app", *,
                 timeout_seconds: float = 2.0, settle_seconds: float = 60.0,
                 session: requests.Session | None = None, headers: dict[str, str] | None = None) -> None:
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds: {timeout_seconds!r} must be positive")
        if settle_seconds < 0:
            raise ValueError(f"settle_seconds: {settle_seconds!r} must not be negative")
        self.settle_seconds = settle_seconds
        self._settled: dict[ReleaseWindow, _Settled] = {}
        self._settled_step = 0.0
        self._last_now = -math.inf
        self._lock = threading.Lock()  # the settled intervals and the HTTP session are shared
        self.url = url.rstrip("/")
        self.metrics: Preset | CustomMetrics = preset_named(preset) if isinstance(preset, str) else preset
        self.timeout_seconds = timeout_seconds
        # No retries: a tick must answer within its timeout, and the next tick asks again anyway.
        # (read=False lets a read timeout surface as itself rather than as a connection error.)
        self._client = PrometheusConnect(url=self.url, headers=headers, session=session,
                                         retry=Retry(total=0, read=False), timeout=timeout_seconds)

    @property
    def description(self) -> str:
        return f"preset {self.metrics.name}" if isinstance(self.metrics, Preset) else "custom PromQL"

    def histories(self, windows: Sequence[ReleaseWindow], now: float,
                  step_seconds: float = 10.0) -> dict[ReleaseKey, History]:
        """Every release's intervals from its start to `now` (unix seconds), one per step.

        `step_seconds` must be a whole number of seconds (range queries resolve to the second).
        """
        with self._lock:
            return self._histories(windows, now, step_seconds)

    def _histories(self, windows: Sequence[ReleaseWindow], now: float,
                   step_seconds: float) -> dict[ReleaseKey, History]:
        if step_seconds < 1 or step_seconds != int(step_seconds):
            raise ValueError(f"step_seconds: {step_seconds!r} must be a whole number of seconds, at least 1")
        keys = [w.key for w in windows]
        if len(set(keys)) != len(keys):
            raise ValueError("windows: each (namespace, name) may appear only once")
        if step_seconds != self._settled_step or now < self._last_now:
            self._settled, self._settled_step = {}, step_seconds
        self._last_now = now
        self._settled = {w: self._settled[w] for w in windows if w in self._settled}  # forget ended releases
        grid = grid_for(windows, now, step_seconds)
        if grid is None:
            return {w.key: History() for w in windows}
        first = min(self._first_unsettled(w, step_seconds) for w in windows)
        tally = Tally(windows, Grid(first, grid.last, step_seconds)) if first <= grid.last else None
        if tally is not None:
            try:
                self._fill(tally, windows, tally.grid)
            except QueryFailed as failure:
                return {w.key: History(error=str(failure)) for w in windows}
        return {w.key: self._history(w, tally, now) for w in windows}

    def _first_unsettled(self, window: ReleaseWindow, step: float) -> float:
        settled = self._settled.get(window)
        if settled is None or not settled.intervals:
            return first_full_interval_end(window.started_at, step)
        return round((window.started_at + settled.intervals[-1].t) / step) * step + step

    def _history(self, window: ReleaseWindow, tally: Tally | None, now: float) -> History:
        """Settled intervals plus fresh ones; what has now settled is kept for the next tick."""
        old = self._settled.get(window, _Settled([], False))
        fresh = [] if tally is None else tally.intervals(window)
        if old.intervals:
            fresh = [i for i in fresh if i.t > old.intervals[-1].t + 1e-6]
        intervals = old.intervals + fresh
        seen = old.seen or (tally is not None and tally.seen(window))
        horizon = now - self.settle_seconds - window.started_at
        self._settled[window] = _Settled([i for i in intervals if i.t <= horizon + 1e-6], seen)
        if intervals and not seen:
            return no_series(window, self.description)
        return History(intervals=intervals)

    async def histories_async(self, windows: Sequence[ReleaseWindow], now: float,
                              step_seconds: float = 10.0) -> dict[ReleaseKey, History]:
        """`histories` on a worker thread, for the controller's event loop."""
        return await asyncio.to_thread(self.histories, windows, now, step_seconds)

    def values(self, queries: Mapping[ReleaseWindow, Mapping[str, str]], now: float,
               interval_seconds: float = 60.0) -> dict[ReleaseKey, dict[str, Reading]]:
        """Single-value custom queries (guard rails such as `{name, query, max}`) at `now`.

        `queries` gives each release its metric names and PromQL templates; `{{arm}}` is the canary.
        Releases that share a template share one query (tagged copies joined with `or`), so the
        queries per tick follow the number of distinct templates, not of releases, and a broken
        template only affects the releases that use it. A template must return an instant vector
        with one series (`sum(...)`); no series is nodata.
        """
        with self._lock:
            return self._values(queries, now, promql_duration(interval_seconds))

    def _values(self, queries: Mapping[ReleaseWindow, Mapping[str, str]], now: float,
                interval: str) -> dict[ReleaseKey, dict[str, Reading]]:
        users: dict[str, list[tuple[ReleaseWindow, str]]] = {}
        for window, named in queries.items():
            for metric, template in named.items():
                users.setdefault(template, []).append((window, metric))
        readings: dict[ReleaseKey, dict[str, Reading]] = {w.key: {} for w in queries}
        for template, using in users.items():
            windows = [window for window, _metric in using]
            for (window, metric), reading in zip(using, self._shared_values(template, windows, now, interval),
                                                 strict=True):
                readings[window.key][metric] = reading
        return readings

    def _shared_values(self, template: str, windows: Sequence[ReleaseWindow], now: float,
                       interval: str) -> list[Reading]:
        """One query for every release using `template`; a failure is every such release's reading."""
        renders = [(str(n), template_values(w, w.canary, interval)) for n, w in enumerate(windows)]
        try:
            result = self._call(self._instant_request(batched_custom_query(template, renders), now))
            by_key: dict[str, list[float]] = {}
            for series in result:
                by_key.setdefault(series["metric"].get(BATCH_LABEL, ""), []).append(float(series["value"][1]))
        except (QueryFailed, TemplateError) as failure:
            return [Reading(None, str(failure))] * len(windows)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            return [Reading(None, f"Prometheus at {self.url} sent an unreadable answer: {error}")] * len(windows)
        return [_reading(by_key.get(str(n), [])) for n in range(len(windows))]

    def _fill(self, tally: Tally, windows: Sequence[ReleaseWindow], grid: Grid) -> None:
        interval = promql_duration(grid.step)
        if isinstance(self.metrics, Preset):
            preset = self.metrics
            namespaces = sorted({w.namespace for w in windows})
            tally.add_requests(preset, self._range(preset.requests_query(namespaces, interval), grid))
            tally.add_buckets(preset, self._range(preset.buckets_query(namespaces, interval), grid))
            return
        custom = self.metrics
        owners: dict[str, tuple[ReleaseKey, Arm]] = {}
        renders: list[tuple[str, dict[str, str]]] = []
        for number, window in enumerate(windows):
            for arm, deployment in ((Arm.BASELINE, window.primary), (Arm.CANARY, window.canary)):
                key = f"{number}-{arm.value}"
                owners[key] = (window.key, arm)
                renders.append((key, template_values(window, deployment, interval)))
        for kind, template in (("requests", custom.requests), ("errors", custom.errors),
                               ("buckets", custom.buckets)):
            if template.strip():
                query = batched_custom_query(template, renders)
                tally.add_custom(kind, self._range(query, grid), owners, custom.bucket_unit_seconds)

    def _range(self, query: str, grid: Grid) -> list[RangeSeries]:
        results: list[RangeSeries] = []
        for piece in grid.chunks(MAX_POINTS):
            results.extend(self._call(self._range_request(query, piece)))
        return results

    def _range_request(self, query: str, piece: Grid) -> Callable[[], Any]:
        return lambda: self._client.custom_query_range(
            query, start_time=_utc(piece.first), end_time=_utc(piece.last), step=str(int(piece.step)),
            params={"timeout": promql_duration(self.timeout_seconds)})

    def instant(self, query: str, at: float | None = None) -> list[RangeSeries]:
        """One instant query (for tools and tests); raises QueryFailed with the reason."""
        return self._call(self._instant_request(query, at))

    def _instant_request(self, query: str, at: float | None) -> Callable[[], Any]:
        params = {"timeout": promql_duration(self.timeout_seconds)}
        if at is not None:
            params["time"] = repr(at)
        return lambda: self._client.custom_query(query, params=params)

    def _call(self, request: Callable[[], Any]) -> list[RangeSeries]:
        try:
            result = request()
        except requests.Timeout:
            raise QueryFailed(
                f"Prometheus at {self.url} did not answer within {self.timeout_seconds:g} s") from None
        except requests.ConnectionError as error:
            raise QueryFailed(f"cannot reach Prometheus at {self.url}: {_root_cause(error)}") from None
        except requests.JSONDecodeError as error:
            raise QueryFailed(f"Prometheus at {self.url} sent an unreadable answer: {error}") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            raise QueryFailed(f"request to Prometheus at {self.url} failed: {error}") from None
        except PrometheusApiClientException as error:
            reason = _prometheus_error(str(error))
            raise QueryFailed(f"Prometheus at {self.url} rejected the query: {reason}") from None
        except (ValueError, KeyError, TypeError) as error:
            raise QueryFailed(f"Prometheus at {self.url} sent an unreadable answer: {error}") from None
        if not isinstance(result, list):
            raise QueryFailed(f"Prometheus at {self.url} sent an unexpected answer: {type(result).__name__}")
        return result


def _reading(values: list[float]) -> Reading:
    if not values:
        return Reading(None, "the query returned no series")
    if len(values) > 1:
        return Reading(None, f"the query returned {len(values)} series; aggregate it to one, e.g. with sum(...)")
    if not math.isfinite(values[0]):
        return Reading(None, f"the query returned {values[0]}")
    return Reading(values[0])


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]+")


def _root_cause(error: BaseException) -> str:
    """`[Errno 111] Connection refused` rather than three nested exception reprs."""
    found = _ERRNO.search(str(error))
    return found.group(0) if found else str(error)


_STATUS = re.compile(r"HTTP Status Code (\d+) \((b'.*'|b\".*\")\)$", re.S)


def _prometheus_error(message: str) -> str:
    """Prometheus' own explanation (`bad_data: parse error ...`) out of the client's exception text."""
    match = _STATUS.search(message)
    if not match:
        return message
    status = match.group(1)
    try:
        body = ast.literal_eval(match.group(2))
        payload = json.loads(body)
        return f"HTTP {status} {payload['errorType']}: {payload['error']}"
    except (ValueError, SyntaxError, KeyError, TypeError):
        return f"HTTP {status}: {match.group(2)[:300]}"


class PrometheusUnavailable(Exception):
    """Prometheus could not be asked (unreachable, timed out, refused us, or answered 5xx): this says
    nothing about whether a query is valid."""


def promql_parse_error(base_url: str, query: str, timeout: float = 5.0, *,
                       session: requests.Session | None = None) -> str | None:
    """Prometheus' own verdict on `query` (already rendered, e.g. by `queries.render_placeholder`):
    its error text when it answers 400 `bad_data` (a parse error, or a type error such as
    `rate(up)`: a query that can never evaluate is invalid), None when it accepts the query (any 200
    answer, empty or not; a 422 execution error also means it parsed).

    The query is evaluated at unix time 0, where no data is, so asking costs the server next to
    nothing. Raises PrometheusUnavailable when the server cannot be reached, times out, answers
    5xx, or answers anything else it should not (401, 404: a wrong URL is not an invalid query).
    """
    url = base_url.rstrip("/") + "/api/v1/query"
    form = {"query": query, "time": "0", "timeout": promql_duration(timeout)}
    try:
        response = (session or requests).post(url, data=form, timeout=timeout)
    except requests.Timeout:
        raise PrometheusUnavailable(f"Prometheus at {base_url} did not answer within {timeout:g} s") from None
    except requests.RequestException as error:
        raise PrometheusUnavailable(f"cannot reach Prometheus at {base_url}: {_root_cause(error)}") from None
    if response.status_code in (200, 422):
        return None
    if response.status_code == 400:
        try:
            payload = response.json()
            if payload.get("errorType") == "bad_data":
                return str(payload["error"])
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    raise PrometheusUnavailable(f"Prometheus at {base_url} answered HTTP {response.status_code}: "
                                f"{response.text[:300]}")

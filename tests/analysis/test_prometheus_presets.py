"""The metrics source against a real Prometheus holding known history (promtool blocks).

Every counter grows at a known rate, so each 10 s interval must come back with exact counts per
arm; distractor series (other Deployments, Ingresses, namespaces, the Istio source-side reporter)
must never leak into a release.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import analysis.prometheus as prometheus_module
from analysis.history import History
from analysis.judges import make_judge
from analysis.model import ArmCounts, Outcome
from analysis.prometheus import PrometheusSource
from analysis.queries import CustomMetrics, ReleaseWindow
from sandbox.prometheus_server import PrometheusServer, Series

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("promtool") is None,
                       reason="needs the prometheus and promtool binaries"),
]

STEP = 10
# Whole minutes an hour ago: old enough for blocks, recent enough for the default retention.
T0 = (int(time.time()) - 3600) // 60 * 60
END = T0 + 300
Rate = float | Callable[[float], float]


def counter(name: str, labels: dict[str, str], rate: Rate) -> Series:
    """A counter sampled every 5 s from one minute before T0 to END, growing at `rate` per second."""
    value, samples = 0.0, []
    for t in range(T0 - 60, END + 1, 5):
        per_second = rate(t) if callable(rate) else rate
        samples.append((float(t), value))
        value += per_second * 5
    return Series(name, labels, samples)


def requests_by_code(name: str, labels: dict[str, str], code_label: str, rates: dict[str, Rate]) -> list[Series]:
    return [counter(name, {**labels, code_label: code}, rate) for code, rate in rates.items()]


def buckets(name: str, labels: dict[str, str], rates: dict[str, float]) -> list[Series]:
    return [counter(name, {**labels, "le": le}, rate) for le, rate in rates.items()]


def canary_ramp(t: float) -> float:
    """The canary's 200s: 1/s for the first 150 s of the release, then 3/s (the weight goes up)."""
    return 1.0 if t < T0 + 150 else 3.0


def app_series() -> list[Series]:
    out: list[Series] = []
    for pod in ("web-primary-6f7d8c9b5-k2x9q", "web-primary-6f7d8c9b5-p7m4z"):
        labels = {"namespace": "shop", "deployment": "web-primary", "pod": pod, "job": "pods"}
        out += requests_by_code("http_requests_total", {**labels, "method": "GET"}, "code", {"200": 10, "500": 0.2})
        out += buckets("http_request_duration_seconds_bucket", labels, {"0.1": 5, "0.5": 9, "+Inf": 10.2})
    labels = {"namespace": "shop", "deployment": "web", "pod": "web-58c9d7f6b-q8w2r", "job": "pods"}
    out += requests_by_code("http_requests_total", labels, "code", {"200": canary_ramp, "503": 0.5})
    out += buckets("http_request_duration_seconds_bucket", labels, {"0.1": 0.5, "0.5": 1, "+Inf": 1.5})
    # Distractors: a Deployment whose name starts like ours, and our names in another namespace.
    out += requests_by_code("http_requests_total", {"namespace": "shop", "deployment": "webx",
                                                    "pod": "webx-7b9c5d-abcde"}, "code", {"500": 100})
    out += requests_by_code("http_requests_total", {"namespace": "other", "deployment": "web-primary",
                                                    "pod": "web-primary-7b9c5d-abcde"}, "code", {"200": 50})
    # No `deployment` label: the arm comes from the pod name <deployment>-<hash>-<suffix>.
    out += requests_by_code("http_requests_total", {"namespace": "legacy", "pod": "api-primary-5d8f7c9b6-abcde"},
                            "code", {"200": 4})
    out += requests_by_code("http_requests_total", {"namespace": "legacy", "pod": "api-5d8f7c9b6x-xyz12"},
                            "code", {"200": 1, "500": 1})
    out += requests_by_code("http_requests_total", {"namespace": "legacy", "pod": "api-0"}, "code", {"500": 70})
    return out


def nginx_series() -> list[Series]:
    base = {"namespace": "shop", "ingress": "web", "service": "web", "controller_class": "nginx"}
    canary = {**base, "canary": "shop-web-canary-80"}
    primary = {**base, "canary": ""}
    return [
        *requests_by_code("nginx_ingress_controller_requests", primary, "status", {"200": 18, "502": 0.2}),
        *requests_by_code("nginx_ingress_controller_requests", canary, "status", {"200": 2, "500": 0.5}),
        *requests_by_code("nginx_ingress_controller_requests", {**primary, "ingress": "web-admin"}, "status",
                          {"500": 100}),
        *buckets("nginx_ingress_controller_request_duration_seconds_bucket", primary, {"0.1": 10, "+Inf": 18.2}),
        *buckets("nginx_ingress_controller_request_duration_seconds_bucket", canary, {"0.1": 1, "+Inf": 2.5}),
    ]


def istio_series() -> list[Series]:
    out: list[Series] = []
    for reporter, scale in (("destination", 1.0), ("source", 1000.0)):
        arms: list[tuple[str, dict[str, float], dict[str, float]]] = [
            ("web-primary", {"200": 9.0, "500": 1.0}, {"50": 5, "250": 8, "+Inf": 10}),
            ("web", {"200": 1.0, "503": 1.0}, {"50": 1, "250": 1.5, "+Inf": 2})]
        for workload, rates, latency in arms:
            labels = {"reporter": reporter, "destination_workload_namespace": "shop",
                      "destination_workload": workload}
            out += requests_by_code("istio_requests_total", labels, "response_code",
                                    {code: rate * scale for code, rate in rates.items()})
            out += buckets("istio_request_duration_milliseconds_bucket", labels,
                           {le: rate * scale for le, rate in latency.items()})
    return out


def envoy_series() -> list[Series]:
    out: list[Series] = []
    clusters: list[tuple[str, dict[str, Rate], dict[str, float]]] = [
        ("shop_web-primary_80", {"200": 15, "503": 0.5}, {"10": 10, "+Inf": 15.5}),
        ("shop_web-canary_80", {"200": 1, "500": 0.5}, {"10": 1, "+Inf": 1.5}),
        ("shop_webx-canary_80", {"500": 100}, {"+Inf": 100}),
        ("other_web-canary_80", {"500": 100}, {"+Inf": 100})]
    for cluster, rates, latency in clusters:
        labels = {"envoy_cluster_name": cluster}
        out += requests_by_code("envoy_cluster_upstream_rq", labels, "envoy_response_code", rates)
        out += buckets("envoy_cluster_upstream_rq_time_bucket", labels, latency)
    return out


TEAMS = 6


def team_series() -> list[Series]:
    """Six releases in six namespaces, each with its own rates (team k: primary k+1 /s, canary 1 /s
    of which k/10 errors)."""
    out: list[Series] = []
    for k in range(TEAMS):
        ns = f"team-{k}"
        out += requests_by_code("http_requests_total", {"namespace": ns, "deployment": "web-primary",
                                                        "pod": "web-primary-6f7d8c9b5-aaaaa"}, "code", {"200": k + 1})
        out += requests_by_code("http_requests_total", {"namespace": ns, "deployment": "web",
                                                        "pod": "web-58c9d7f6b-bbbbb"}, "code",
                                {"200": 1 - k / 10, "500": k / 10})
    return out


@pytest.fixture(scope="module")
def prom() -> Iterator[PrometheusServer]:
    server = PrometheusServer()
    server.preload(app_series() + nginx_series() + istio_series() + envoy_series() + team_series())
    with server:
        yield server


def window(namespace: str = "shop", name: str = "web", primary: str | None = None, canary: str | None = None,
           **extra: str) -> ReleaseWindow:
    return ReleaseWindow(namespace=namespace, name=name, primary=primary or f"{name}-primary",
                         canary=canary or name, started_at=T0, **extra)


def only(histories: dict[tuple[str, str], History], key: tuple[str, str] = ("shop", "web")) -> History:
    history = histories[key]
    assert history.error is None, history.error
    assert [i.t for i in history.intervals] == [float(STEP * k) for k in range(1, 31)]
    return history


def counts(arm: ArmCounts) -> tuple[float, float]:
    return (round(arm.requests, 6), round(arm.errors, 6))


def rounded(arm: ArmCounts) -> tuple[tuple[float, float], ...]:
    return tuple((bound, round(count, 6)) for bound, count in arm.buckets)


def test_app_preset_counts_each_arm_by_deployment_label(prom: PrometheusServer) -> None:
    history = only(PrometheusSource(prom.url, "app").histories([window()], now=END, step_seconds=STEP))
    for interval in history.intervals:
        canary_ok = 10 * canary_ramp(T0 + interval.t - STEP) + 5  # the rate during the interval
        assert counts(interval.baseline) == (204.0, 4.0)
        assert counts(interval.canary) == (canary_ok, 5.0)
        assert interval.weight == pytest.approx(100 * canary_ok / (204 + canary_ok))
        assert rounded(interval.baseline) == ((0.1, 100.0), (0.5, 180.0), (math.inf, 204.0))
        assert rounded(interval.canary) == ((0.1, 5.0), (0.5, 10.0), (math.inf, 15.0))


def test_app_preset_falls_back_to_pod_name_prefix_without_deployment_label(prom: PrometheusServer) -> None:
    legacy = window("legacy", "api")
    history = only(PrometheusSource(prom.url, "app").histories([legacy], now=END, step_seconds=STEP),
                   ("legacy", "api"))
    assert {counts(i.baseline) for i in history.intervals} == {(40.0, 0.0)}
    assert {counts(i.canary) for i in history.intervals} == {(20.0, 10.0)}


def test_nginx_preset_splits_by_canary_label_of_the_users_ingress(prom: PrometheusServer) -> None:
    history = only(PrometheusSource(prom.url, "nginx").histories([window(ingress="web")], now=END, step_seconds=STEP))
    assert {counts(i.baseline) for i in history.intervals} == {(182.0, 2.0)}
    assert {counts(i.canary) for i in history.intervals} == {(25.0, 5.0)}
    assert {rounded(i.canary) for i in history.intervals} == {((0.1, 10.0), (math.inf, 25.0))}


def test_istio_preset_counts_server_side_reports_and_converts_milliseconds(prom: PrometheusServer) -> None:
    history = only(PrometheusSource(prom.url, "istio").histories([window()], now=END, step_seconds=STEP))
    assert {counts(i.baseline) for i in history.intervals} == {(100.0, 10.0)}
    assert {counts(i.canary) for i in history.intervals} == {(20.0, 10.0)}
    assert {rounded(i.baseline) for i in history.intervals} == {((0.05, 50.0), (0.25, 80.0), (math.inf, 100.0))}


def test_envoy_preset_maps_clusters_to_primary_and_canary_services(prom: PrometheusServer) -> None:
    history = only(PrometheusSource(prom.url, "envoy").histories([window()], now=END, step_seconds=STEP))
    assert {counts(i.baseline) for i in history.intervals} == {(155.0, 5.0)}
    assert {counts(i.canary) for i in history.intervals} == {(15.0, 5.0)}
    assert {rounded(i.baseline) for i in history.intervals} == {((0.01, 100.0), (math.inf, 155.0))}


def counting_session() -> tuple[requests.Session, list[str]]:
    session, calls = requests.Session(), []

    def record(response: requests.Response, *_args: object, **_kwargs: object) -> None:
        calls.append(response.request.url or "")

    session.hooks["response"].append(record)
    return session, calls


def team_windows(count: int) -> list[ReleaseWindow]:
    return [window(f"team-{k}") for k in range(count)]


@pytest.mark.parametrize("metrics", ["app", "custom"])
def test_queries_per_tick_do_not_grow_with_the_number_of_releases(prom: PrometheusServer, metrics: str) -> None:
    spec: str | CustomMetrics = "app" if metrics == "app" else CUSTOM
    sent: list[int] = []
    for releases in (1, TEAMS):
        session, calls = counting_session()
        results = PrometheusSource(prom.url, spec, session=session).histories(
            team_windows(releases), now=END, step_seconds=STEP)
        sent.append(len(calls))
        for k in range(releases):
            history = only(results, (f"team-{k}", "web"))
            assert {counts(i.baseline) for i in history.intervals} == {(10.0 * (k + 1), 0.0)}
            assert {counts(i.canary) for i in history.intervals} == {(10.0, float(k))}
    assert sent[0] == sent[1] == (2 if metrics == "app" else 3)


def test_a_range_longer_than_one_query_allows_is_fetched_in_pieces(prom: PrometheusServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    whole = PrometheusSource(prom.url, "app").histories([window()], now=END, step_seconds=STEP)
    monkeypatch.setattr(prometheus_module, "MAX_POINTS", 7)
    session, calls = counting_session()
    pieces = PrometheusSource(prom.url, "app", session=session).histories([window()], now=END, step_seconds=STEP)
    assert len(calls) == 2 * math.ceil(30 / 7)
    assert pieces == whole


def test_later_ticks_ask_only_for_intervals_that_had_not_settled(prom: PrometheusServer) -> None:
    session, calls = counting_session()
    source = PrometheusSource(prom.url, "app", session=session, settle_seconds=60)
    source.histories([window()], now=T0 + 200, step_seconds=STEP)
    calls.clear()
    later = source.histories([window()], now=END, step_seconds=STEP)
    # Intervals ending by T0+140 had settled at T0+200; the next tick starts right after them.
    starts = {parse_qs(urlsplit(url).query)["start"][0] for url in calls}
    assert starts == {str(T0 + 150)}
    assert later == PrometheusSource(prom.url, "app").histories([window()], now=END, step_seconds=STEP)


def test_a_release_only_gets_intervals_that_started_after_its_canary(prom: PrometheusServer) -> None:
    late = ReleaseWindow("shop", "web", "web-primary", "web", started_at=T0 + 95)
    history = PrometheusSource(prom.url, "app").histories([late], now=END, step_seconds=STEP)[("shop", "web")]
    assert [i.t for i in history.intervals][:2] == [15.0, 25.0]
    assert history.intervals[-1].t == 205.0


CUSTOM = CustomMetrics(
    requests='sum(increase(http_requests_total{namespace="{{namespace}}", deployment="{{arm}}"}[{{interval}}]))',
    errors='sum(increase(http_requests_total{namespace="{{namespace}}", deployment="{{arm}}", code=~"5.."}'
           "[{{interval}}]))",
    buckets='sum by (le) (increase(http_request_duration_seconds_bucket{namespace="{{namespace}}", '
            'deployment="{{arm}}"}[{{interval}}]))',
)


def test_custom_promql_gives_the_same_counts_as_the_preset(prom: PrometheusServer) -> None:
    custom = only(PrometheusSource(prom.url, CUSTOM).histories([window()], now=END, step_seconds=STEP))
    preset = only(PrometheusSource(prom.url, "app").histories([window()], now=END, step_seconds=STEP))
    assert [(counts(i.baseline), counts(i.canary), rounded(i.canary)) for i in custom.intervals] == [
        (counts(i.baseline), counts(i.canary), rounded(i.canary)) for i in preset.intervals]


def test_a_release_with_no_series_at_all_is_nodata_with_the_reason(prom: PrometheusServer) -> None:
    ghost = window("shop", "ghost")
    history = PrometheusSource(prom.url, "app").histories([ghost], now=END, step_seconds=STEP)[("shop", "ghost")]
    assert history.nodata and not history.intervals
    assert history.error is not None and "ghost-primary" in history.error and "namespace shop" in history.error


def test_a_bad_custom_query_is_nodata_naming_prometheus_reason(prom: PrometheusServer) -> None:
    broken = CustomMetrics(requests="sum(rate(http_requests_total[{{interval}}])", errors="vector(0)")
    results = PrometheusSource(prom.url, broken).histories([window(), window("legacy", "api")], now=END,
                                                            step_seconds=STEP)
    for history in results.values():
        assert history.nodata and not history.intervals
        assert history.error is not None and "rejected the query" in history.error and "bad_data" in history.error


CANARY_ERROR_PERCENT = (
    'sum(increase(http_requests_total{namespace="{{namespace}}", deployment="{{arm}}", code=~"5.."}[{{interval}}]))'
    ' / sum(increase(http_requests_total{namespace="{{namespace}}", deployment="{{arm}}"}[{{interval}}])) * 100'
)


def test_guard_rail_values_share_one_query_per_template(prom: PrometheusServer) -> None:
    session, calls = counting_session()
    queries = {w: {"error-percent": CANARY_ERROR_PERCENT} for w in team_windows(TEAMS)}
    queries[window()] = {"error-percent": CANARY_ERROR_PERCENT, "broken": "sum(rate(x[{{interval}}])",
                         "per-pod": 'http_requests_total{namespace="{{namespace}}", code="200"}'}
    queries[window("shop", "ghost")] = {"error-percent": CANARY_ERROR_PERCENT}
    readings = PrometheusSource(prom.url, session=session).values(queries, now=END, interval_seconds=60)
    assert len(calls) == 3
    for k in range(TEAMS):
        assert readings[(f"team-{k}", "web")]["error-percent"].value == pytest.approx(10.0 * k)
    shop = readings[("shop", "web")]
    assert shop["error-percent"].value == pytest.approx(100 * 5 / 35)
    assert shop["broken"].value is None and "bad_data" in (shop["broken"].error or "")
    assert shop["per-pod"].value is None and "aggregate" in (shop["per-pod"].error or "")
    ghost = readings[("shop", "ghost")]["error-percent"]
    assert ghost.value is None and ghost.error == "the query returned no series"


def test_a_canary_failing_a_third_of_requests_is_judged_a_failure(prom: PrometheusServer) -> None:
    history = only(PrometheusSource(prom.url, "app").histories([window()], now=END, step_seconds=STEP))
    verdict = history.verdict(make_judge("sequential", alpha=0.01))
    assert verdict.outcome is Outcome.FAIL and "error-rate" in verdict.reason

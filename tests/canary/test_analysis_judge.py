"""The controller's analysis hook against a real Prometheus: right verdict per release, one batch per tick
whatever the number of releases and whenever they start."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator

import pytest
import requests

from analysis.model import Outcome, Verdict
from analysis.prometheus import Reading
from canary.analysis_judge import AnalysisJudge, guard_rail_verdict
from canary.config import AnalysisSpec, CustomMetric
from canary.judging import ReleaseWindow
from sandbox.prometheus_server import PrometheusServer, Series

pytestmark = [pytest.mark.real, pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs prometheus")]

T0 = (int(time.time()) - 3600) // 60 * 60
END = T0 + 600
FLEET = 8  # releases in namespace "fleet", every other one with a bad canary


def counter(labels: dict[str, str], rate: float) -> Series:
    return Series("http_requests_total", labels,
                  [(float(t), rate * (t - T0 + 60)) for t in range(T0 - 60, END + 1, 5)])


def release(namespace: str, name: str, canary_error_share: float) -> list[Series]:
    primary = {"namespace": namespace, "deployment": f"{name}-primary", "pod": f"{name}-primary-6f7d8c9b5-aaaaa"}
    canary = {"namespace": namespace, "deployment": name, "pod": f"{name}-58c9d7f6b-bbbbb"}
    return [
        counter({**primary, "code": "200"}, 49.75), counter({**primary, "code": "500"}, 0.25),
        counter({**canary, "code": "200"}, 10 * (1 - canary_error_share)),
        counter({**canary, "code": "500"}, 10 * canary_error_share),
    ]


@pytest.fixture(scope="module")
def prom() -> Iterator[PrometheusServer]:
    server = PrometheusServer()
    fleet = [series for n in range(FLEET) for series in release("fleet", f"app{n}", 0.10 if n % 2 else 0.005)]
    server.preload(release("shop", "web", 0.10) + release("shop", "api", 0.005) + fleet)
    with server:
        yield server


def window(name: str) -> ReleaseWindow:
    return ReleaseWindow("shop", name, f"{name}-primary", name, 1, float(T0), "nginx")


def test_bad_canary_fails_good_canary_does_not_and_one_batch_serves_both(prom: PrometheusServer) -> None:
    session = requests.Session()
    sent: list[str] = []
    session.hooks["response"].append(lambda response, *a, **k: sent.append(response.url))
    spec = AnalysisSpec(metrics=("error-rate",), interval_seconds=10)
    AnalysisJudge(prom.url, session=session).verdict(window("web"), spec, float(END))
    alone = len(sent)
    judge = AnalysisJudge(prom.url, session=session)
    judge.verdict(window("api"), spec, float(END - 10))  # registers api
    sent.clear()
    bad = judge.verdict(window("web"), spec, float(END))  # the next tick: read with api
    good = judge.verdict(window("api"), spec, float(END))
    assert bad.outcome is Outcome.FAIL, bad
    assert good.outcome in (Outcome.PASS, Outcome.CONTINUE), good
    assert len(sent) == alone, sent  # both releases' tick costs what one release's does


def test_unreachable_prometheus_is_nodata_never_pass() -> None:
    judge = AnalysisJudge("http://127.0.0.1:9", timeout_seconds=0.5)
    verdict = judge.verdict(window("web"), AnalysisSpec(), time.time())
    assert verdict.outcome is Outcome.NODATA and "Prometheus" in verdict.reason


def test_misconfigured_judge_is_nodata_with_the_reason() -> None:
    judge = AnalysisJudge("http://127.0.0.1:9")
    verdict = judge.verdict(window("web"), AnalysisSpec(metrics=("bogus",)), time.time())
    assert verdict.outcome is Outcome.NODATA and "bogus" in verdict.reason


def test_a_new_release_does_not_inherit_the_previous_releases_history(prom: PrometheusServer) -> None:
    judge = AnalysisJudge(prom.url)
    spec = AnalysisSpec(metrics=("error-rate",), interval_seconds=10)
    first = judge.verdict(window("web"), spec, float(END))
    assert first.outcome is Outcome.FAIL
    judge.forget("shop", "web")
    # The next release starts at END: nothing of it has been measured yet, whatever was cached.
    later = ReleaseWindow("shop", "web", "web-primary", "web", 2, float(END), "nginx")
    second = judge.verdict(later, spec, float(END) + 6)  # the next tick
    assert second.outcome is Outcome.NODATA and "waiting" not in second.reason, second


CANARY_ERROR_PERCENT = (
    'sum(increase(http_requests_total{namespace="{{namespace}}", deployment="{{arm}}", code=~"5.."}[1m]))'
    ' / sum(increase(http_requests_total{namespace="{{namespace}}", deployment="{{arm}}"}[1m])) * 100'
)


def test_guard_rails_fail_the_release_past_their_limit_and_share_one_query(prom: PrometheusServer) -> None:
    session = requests.Session()
    sent: list[str] = []
    session.hooks["response"].append(lambda response, *a, **k: sent.append(response.url))
    rail = CustomMetric("error-percent", CANARY_ERROR_PERCENT, max=5.0)
    spec = AnalysisSpec(metrics=(), custom=(rail,), interval_seconds=10)
    judge = AnalysisJudge(prom.url, session=session)
    judge.verdict(window("api"), spec, float(END - 10))  # registers api
    sent.clear()
    bad = judge.verdict(window("web"), spec, float(END))  # the next tick: read with api
    good = judge.verdict(window("api"), spec, float(END))
    assert bad.outcome is Outcome.FAIL and "error-percent" in bad.reason and "above its max 5" in bad.reason, bad
    assert good.outcome is Outcome.PASS, good
    assert len(sent) == 1, sent  # one query for both releases


def test_guard_rails_join_the_statistical_verdict(prom: PrometheusServer) -> None:
    low_floor = CustomMetric("error-percent", CANARY_ERROR_PERCENT, min=1.0)  # api's canary is at 0.5%
    spec = AnalysisSpec(metrics=("error-rate",), custom=(low_floor,), interval_seconds=10)
    verdict = AnalysisJudge(prom.url).verdict(window("api"), spec, float(END))
    assert verdict.outcome is Outcome.FAIL and "below its min 1" in verdict.reason, verdict
    assert "error-rate" in verdict.evidence and "error-percent" in verdict.evidence


def test_a_guard_rail_without_a_value_holds_the_step_never_passes(prom: PrometheusServer) -> None:
    rail = CustomMetric("ghost", 'sum(rate(no_such_metric{deployment="{{arm}}"}[1m]))', max=1.0)
    verdict = AnalysisJudge(prom.url).verdict(window("web"), AnalysisSpec(metrics=(), custom=(rail,)), float(END))
    assert verdict.outcome is Outcome.NODATA and "no series" in verdict.reason, verdict


@pytest.mark.parametrize(("value", "outcome"), [(None, Outcome.NODATA), (0.5, Outcome.FAIL), (1.0, Outcome.PASS),
                                                (3.0, Outcome.PASS), (3.5, Outcome.FAIL)])
def test_guard_rail_limits_are_inclusive(value: float | None, outcome: Outcome) -> None:
    rail = CustomMetric("x", "vector(1)", max=3.0, min=1.0)
    assert guard_rail_verdict(rail, Reading(value, None if value is not None else "down")).outcome is outcome


class CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.posts = 0

    def post(self, *args: object, **kwargs: object) -> requests.Response:
        self.posts += 1
        return super().post(*args, **kwargs)  # type: ignore[arg-type]


def test_a_guard_rail_its_prometheus_cannot_parse_is_a_config_error_with_the_field(prom: PrometheusServer) -> None:
    session = CountingSession()
    judge = AnalysisJudge(prom.url, session=session)
    # Passes the server-less check (brackets and quotes balance) but can never evaluate: a type error.
    bad = AnalysisSpec(metrics=(), custom=(CustomMetric("rate-of-gauge", 'rate(up{namespace="{{namespace}}"})', 1.0),))
    good = AnalysisSpec(metrics=(), custom=(CustomMetric("ok", 'sum(rate(up{namespace="{{namespace}}"}[1m]))', 1.0),))
    error = judge.config_error(bad, "shop", "web")
    assert error is not None and error.startswith("weir.dev/rollout.analysis.metrics[name=rate-of-gauge].query")
    assert "Fix:" in error and "range vector" in error
    assert judge.config_error(good, "shop", "web") is None
    for _ in range(5):
        assert judge.config_error(bad, "shop", "web") == error
    assert session.posts == 2  # asked once per template, then the answer is kept
    unreachable = AnalysisJudge("http://127.0.0.1:9")
    assert unreachable.config_error(bad, "shop", "web") is None  # says nothing about the query


class QueryCounter:
    """A session that counts Prometheus range queries (one per kind of data per batched read)."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.range_queries = 0
        self.session.hooks["response"].append(self._seen)

    def _seen(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        if "/api/v1/query_range" in response.url:
            self.range_queries += 1


def fleet_window(n: int, started_at: float) -> ReleaseWindow:
    return ReleaseWindow("fleet", f"app{n}", f"app{n}-primary", f"app{n}", 1, started_at, "nginx")


def test_releases_joining_one_by_one_never_make_the_others_be_read_again(prom: PrometheusServer) -> None:
    """Staggered starts: each release joins at its own time, between ticks, then looks once per interval
    on its own schedule. Every look either costs nothing (the last read serves it, or it waits for the
    next tick) or is the group's tick: one read of everyone, 2 range queries (requests and latency)."""
    spec = AnalysisSpec(metrics=("error-rate",), interval_seconds=10)
    max_age = spec.interval_seconds / 2
    counter = QueryCounter()
    judge = AnalysisJudge(prom.url, session=counter.session)
    starts = {n: float(T0 + 17 * n) for n in range(FLEET)}  # 17 s apart: off the 10 s grid and the ticks
    looks = sorted((starts[n] + 12.0 + 10.0 * k, n) for n in range(FLEET) for k in range(20)
                   if starts[n] + 12.0 + 10.0 * k <= END)
    last_tick = -math.inf
    served: list[tuple[int, float, float, Verdict]] = []  # release, look time, read time, verdict
    joined: set[int] = set()
    for now, n in looks:
        before = counter.range_queries
        verdict = judge.verdict(fleet_window(n, starts[n]), spec, now)
        queries = counter.range_queries - before
        if now - last_tick >= max_age:
            assert queries == 2, (now, n, queries)  # the tick: everyone at once
            last_tick = now
        else:
            assert queries == 0, (now, n, queries)  # never a read for a joiner, nor a re-read of the others
        if n not in joined and queries == 0:
            assert verdict.outcome is Outcome.NODATA and "waiting for the next batched" in verdict.reason
        elif "waiting" not in verdict.reason:
            served.append((n, now, last_tick, verdict))
        joined.add(n)
    assert len(joined) == FLEET
    ticks = counter.range_queries // 2
    assert ticks <= (END - T0) / max_age + 1  # reads follow the clock, not the releases
    # Each release's verdicts are the ones it gets when read alone at the same moment.
    assert len({n for n, *_ in served}) == FLEET
    for n, _now, read_at, verdict in served[::5]:
        alone = AnalysisJudge(prom.url).verdict(fleet_window(n, starts[n]), spec, read_at)
        assert verdict == alone, (n, read_at)
    finals = {n: verdict.outcome for n, _, _, verdict in served}
    assert all(finals[n] is Outcome.FAIL for n in range(1, FLEET, 2)), finals
    assert all(finals[n] in (Outcome.PASS, Outcome.CONTINUE) for n in range(0, FLEET, 2)), finals


def test_a_release_that_joins_between_ticks_is_read_at_the_next_one(prom: PrometheusServer) -> None:
    spec = AnalysisSpec(metrics=("error-rate",), interval_seconds=10)
    counter = QueryCounter()
    judge = AnalysisJudge(prom.url, session=counter.session)
    judge.verdict(fleet_window(0, float(T0)), spec, float(END - 10))  # a tick for release 0
    first = counter.range_queries
    waiting = judge.verdict(fleet_window(1, float(T0)), spec, float(END - 8))
    assert counter.range_queries == first  # joining read nothing
    assert waiting.outcome is Outcome.NODATA and "due in 3 s" in waiting.reason, waiting
    read = judge.verdict(fleet_window(1, float(T0)), spec, float(END - 5))  # the next tick
    assert counter.range_queries == 2 * first
    assert read.outcome is Outcome.FAIL, read
    assert judge.verdict(fleet_window(0, float(T0)), spec, float(END - 4)).outcome is not Outcome.NODATA
    assert counter.range_queries == 2 * first  # release 0 was read at that tick too


def test_a_new_release_of_the_same_deployment_is_judged_afresh_without_being_forgotten(
        prom: PrometheusServer) -> None:
    spec = AnalysisSpec(metrics=("error-rate",), interval_seconds=10)
    judge = AnalysisJudge(prom.url)
    old = judge.verdict(fleet_window(3, float(T0)), spec, float(END - 20))
    assert old.outcome is Outcome.FAIL
    again = fleet_window(3, float(END - 45))  # the next revision: its canary started later
    assert "waiting" in judge.verdict(again, spec, float(END - 18)).reason  # not the old release's verdict
    fresh = judge.verdict(again, spec, float(END))
    assert fresh == AnalysisJudge(prom.url).verdict(again, spec, float(END))  # only its own four intervals
    assert fresh.reason != old.reason

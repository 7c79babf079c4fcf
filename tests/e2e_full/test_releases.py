"""Whole releases under steady load through the real data plane, judged on real Prometheus data, with
alerts from real Prometheus rules through real Alertmanager: promoted without a single failed request,
rolled back by the analysis, rolled back by an alert, and a release right after a rollback judged on
its own evidence."""

from __future__ import annotations

import time
from typing import Any

from sandbox.demo import release_failures
from sandbox.stack import Stack
from tests.e2e.harness import wait_for
from tests.e2e_full.support import ExampleApp, Timeline, real_parts_marks

pytestmark = real_parts_marks()

RATE = 120.0  # requests per second, through nginx


def rollout(weights: list[int], interval: str, analysis_interval: str = "2s",
            alerts: list[str] | None = None) -> dict[str, Any]:
    # Error rate only: these tests are about the data plane and the two rollback triggers, and a
    # latency verdict on a 20 ms app shared with other processes on 2 cores is not what they test.
    # The analysis looks every 2 s at the least: increase() over 1 s has at most one 1 s scrape.
    return {
        "router": "nginx",
        "stages": [{"canary": {"weights": weights, "interval": interval}}],
        "analysis": {"interval": analysis_interval, "metrics": ["error-rate"]},
        "progress-deadline": "60s",
        **({"rollback-on-alerts": alerts} if alerts else {}),
    }


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}s"


def test_healthy_release_under_load_is_promoted_without_one_failed_request(stack: Stack) -> None:
    app = ExampleApp(stack, "web-healthy", rollout([10, 30, 50], "3s"), {"ERROR_RATE": "0"}).create("1.0")
    assert stack.full is not None
    reloads_before = stack.full.plane.generation
    with app.load(rate=RATE) as load, Timeline(app) as timeline:
        started = timeline.origin = app.release("2.0", {})
        app.api.wait_phase("Idle", timeout=120, revision=1)
        promoted = time.monotonic() - started
        # The release ends when the canary's pods are gone (drained and exited), not when the state says Idle.
        wait_for(lambda: app.canary_pods() == 0, 30, "the canary's pods to terminate")
        wait_for(lambda: app.send(100).by_version == {"2.0": 100}, 10, "the primary to serve 2.0 only")
        report = load.stop()

    reloads = stack.full.plane.generation - reloads_before
    print(f"\nhealthy release promoted in {promoted:.1f}s under {RATE:.0f} req/s: {report.sent} requests, "
          f"by version {report.by_version}, by code {report.by_code}, {report.connection_errors} connection "
          f"errors, {reloads} nginx reloads, canary weights {timeline.weights()}")
    assert "promoted" in app.state()["message"]
    assert timeline.max_weight() == 50, "the ladder was not walked"
    assert report.by_version.get("2.0", 0) > 0 and report.by_version.get("1.0", 0) > 0
    assert release_failures(report) == 0, report.to_json()
    assert report.failed == 0, report.to_json()  # the app itself fails nothing here: any 5xx is the release's
    assert report.answered == report.sent


def test_canary_with_5_percent_errors_is_rolled_back_by_the_analysis(stack: Stack) -> None:
    # The demo's baseline: 0.5% errors on the primary.
    app = ExampleApp(stack, "web-faulty", rollout([10, 30, 50], "10s")).create("1.0")
    with app.load(rate=RATE) as load, Timeline(app) as timeline:
        before = load.snapshot()
        started = timeline.origin = app.release("2.0", {"ERROR_RATE": "0.05"})
        state = app.api.wait_phase("RolledBack", timeout=120, revision=1)
        rolled_back = time.monotonic() - started
        after = load.snapshot()
    weight_0 = timeline.rollback_reached_weight_0()

    served = after.by_version.get("2.0", 0) - before.by_version.get("2.0", 0)
    failed = after.failed_by_version("2.0") - before.failed_by_version("2.0")
    print(f"\n5% errors rolled back {rolled_back:.1f}s after the template change (canary weight 0 at "
          f"{_seconds(weight_0)}, weights {timeline.weights()}): the canary served {served} requests and "
          f"failed {failed}; {state['message']}")
    assert state["message"].startswith("analysis failed: error-rate"), state["message"]
    assert failed > 0
    assert release_failures(after) - release_failures(before) == 0
    assert app.weight() == 0
    wait_for(lambda: app.canary_pods() == 0, 30, "the canary's pods to terminate")
    # nginx follows the API a moment later (the canary's terminating pods still answer meanwhile).
    wait_for(lambda: set(app.send(100).by_version) == {"1.0"}, 10, "nginx to send everything to 1.0")


def test_firing_alert_for_the_release_rolls_it_back_end_to_end(stack: Stack) -> None:
    # A ladder that cannot finish first: the alert has to decide.
    config = rollout([10, 50], "60s", alerts=['severity="page"'])
    app = ExampleApp(stack, "web-alerting", config).create("1.0")
    with app.load(rate=40), Timeline(app, alert="DemoAppDegraded") as timeline:
        timeline.origin = app.release("2.0", {"DEGRADED": "true"})
        state = app.api.wait_phase("RolledBack", timeout=60, revision=1)
        # The rollback can be over between two of the timeline's samples: let it see the settled world.
        wait_for(lambda: timeline.rollback_reached_weight_0() is not None, 10, "the timeline to sample weight 0")

    exported = timeline.moment("pod exports it")
    weight_0 = timeline.rollback_reached_weight_0()
    chain = [(link, timeline.moment(link)) for link in timeline.moments]
    chain += [("canary weight 10", timeline.first(weight=10)), ("rolling back", timeline.first(phase="RollingBack")),
              ("canary weight 0", weight_0)]
    chain.sort(key=lambda item: float("inf") if item[1] is None else item[1])
    print("\nalert rollback, seconds after the template change: "
          + ", ".join(f"{link} {_seconds(at)}" for link, at in chain))
    if exported is not None and weight_0 is not None:
        print(f"from the metric change (canary pod exports demoapp_degraded 1) to canary weight 0: "
              f"{weight_0 - exported:.2f}s (target < 5 s); {state['message']}")
    assert state["message"].startswith("alert firing: DemoAppDegraded"), state["message"]
    assert exported is not None, "never saw the canary pod export the degraded gauge"
    assert weight_0 is not None and weight_0 > exported
    assert app.weight() == 0


def test_a_release_right_after_a_rollback_is_decided_by_its_own_signals(stack: Stack) -> None:
    """The demo's order: an analysis rollback, then at once a release that only an alert should stop.
    The second release must not inherit the first one's verdict (the judge may reuse a Prometheus
    fetch for half an analysis interval: 4 s here makes that window wide enough to matter)."""
    config = rollout([10, 50], "60s", "4s", alerts=['severity="page"'])
    app = ExampleApp(stack, "web-next", config).create("1.0")
    with app.load(rate=RATE):
        app.release("2.0", {"ERROR_RATE": "0.05"})
        first = app.api.wait_phase("RolledBack", timeout=120, revision=1)
        app.release("3.0", {"DEGRADED": "true"})
        second = app.api.wait_phase("RolledBack", timeout=60, revision=2)
    print(f"\nrevision 1: {first['message']}\nrevision 2: {second['message']}")
    assert first["message"].startswith("analysis failed: error-rate"), first["message"]
    assert second["message"].startswith("alert firing: DemoAppDegraded"), second["message"]


CANARY_5XX_PERCENT = (
    'sum(rate(http_requests_total{namespace="{{namespace}}", deployment="{{arm}}", code=~"5.."}[10s])) * 100'
    ' / sum(rate(http_requests_total{namespace="{{namespace}}", deployment="{{arm}}"}[10s]))'
)


def test_a_custom_promql_guard_rail_rolls_back_a_canary_past_its_limit(stack: Stack) -> None:
    """Only a guard rail judges this release (no statistical metric): the canary's own 5xx percentage,
    from the user's PromQL with the release's names filled in, must stay at most 2."""
    config = rollout([10, 50], "60s")
    config["analysis"]["metrics"] = [{"name": "canary-5xx-percent", "query": CANARY_5XX_PERCENT, "max": 2}]
    app = ExampleApp(stack, "web-railed", config).create("1.0")
    with app.load(rate=RATE):
        app.release("2.0", {"ERROR_RATE": "0.2"})
        state = app.api.wait_phase("RolledBack", timeout=120, revision=1)
    print(f"\nguard rail: {state['message']}")
    assert state["message"].startswith("analysis failed: canary-5xx-percent:"), state["message"]
    assert "above its max 2" in state["message"], state["message"]
    assert app.weight() == 0

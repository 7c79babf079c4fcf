"""Routing holds at the real data plane: while the controller holds a step, nginx sends the documented
share of requests to the canary pods (weights) or exactly the matching ones (header, cookie)."""

from __future__ import annotations

from typing import Any

from sandbox.stack import Stack
from tests.e2e.harness import wait_for
from tests.e2e_full.support import ExampleApp, real_parts_marks

pytestmark = real_parts_marks()

# Requests per measured weight: at weight 50 the sampling sd is 0.65 points, so a correct split misses
# +-3 points about once in 300,000 runs (with 2000 requests, once in 140).
SAMPLE = 6_000
TOLERANCE = 0.03  # +-3 points
# Error rate only, looked at every 2 s (increase() over 1 s has at most one 1 s scrape: never any data).
ANALYSIS = {"interval": "2s", "metrics": ["error-rate"]}


def hold(app: ExampleApp) -> None:
    """Pause the release (routing held, clocks stopped) and wait until the controller says so."""
    app.api.command("pause")
    app.api.wait_phase("Paused", timeout=15)


def resume(app: ExampleApp) -> None:
    app.api.command("resume")
    app.api.wait_phase("Progressing", timeout=15)


def abort(app: ExampleApp, revision: int) -> None:
    app.api.command("abort")
    app.api.wait_phase("RolledBack", timeout=30, revision=revision)


def test_canary_weights_10_and_50_hold_at_nginx_within_3_points(stack: Stack) -> None:
    rollout: dict[str, Any] = {
        "router": "nginx",
        "stages": [{"canary": {"weights": [10, 50], "interval": "5s"}}],
        "analysis": ANALYSIS, "progress-deadline": "60s",
    }
    app = ExampleApp(stack, "web-weights", rollout, {"ERROR_RATE": "0"}).create("1.0")
    with app.load(rate=40):  # gives the analysis data, so the step can end after resume
        app.release("2.0", {})
        for weight in (10, 50):
            app.wait_weight(weight)
            hold(app)
            assert app.weight() == weight, "the step moved on before the pause landed"
            app.wait_data_plane_weight(weight)

            report = app.send(SAMPLE, rate=600)

            assert report.answered == SAMPLE and report.failed == 0, report.to_json()
            assert set(report.by_version) == {"1.0", "2.0"}, report.by_version
            share = report.share("2.0")
            print(f"\nweight {weight}%: canary served {report.by_version['2.0']} of {SAMPLE} "
                  f"({share:.1%}) through nginx")
            assert abs(share - weight / 100) <= TOLERANCE
            assert app.weight() == weight, "the weight changed while the controller held it"
            if weight == 10:
                resume(app)
        abort(app, revision=1)


def test_header_then_cookie_stages_route_only_matching_requests_to_the_canary(stack: Stack) -> None:
    rollout: dict[str, Any] = {
        "router": "nginx",
        "stages": [{"ab": {"header": "x-canary", "value": "always", "duration": "5s"}},
                   {"gray": {"cookie": "region", "value": "eu", "duration": "5s"}},
                   {"canary": {"weights": [50], "interval": "30s"}}],
        "analysis": ANALYSIS, "progress-deadline": "60s",
    }
    app = ExampleApp(stack, "web-routes", rollout, {"ERROR_RATE": "0"}).create("1.0")

    def versions(headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None) -> dict[str, int]:
        report = app.send(200, rate=400, headers=headers, cookies=cookies)
        assert report.failed == 0, report.to_json()
        return report.by_version

    canary, primary = {"2.0": 200}, {"1.0": 200}
    # Matching traffic in both stages, so the canary has data to be judged on and each stage can end.
    with app.load(rate=30), app.load(rate=15, headers={"x-canary": "always"}), \
            app.load(rate=15, cookies={"region": "eu"}):
        app.release("2.0", {})

        wait_for(lambda: versions({"x-canary": "always"}) == canary, 60, "the header rule at nginx", interval=0.1)
        hold(app)
        assert app.state().get("weight") == 0
        assert versions({"x-canary": "always"}) == canary
        assert versions() == primary
        assert versions({"x-canary": "never"}) == primary
        assert versions({"x-canary": "Always"}) == primary  # the value is compared exactly
        assert versions(cookies={"region": "eu"}) == primary  # not this stage's rule
        resume(app)

        wait_for(lambda: versions(cookies={"region": "eu"}) == canary, 60, "the cookie rule at nginx", interval=0.1)
        hold(app)
        assert versions(cookies={"region": "eu"}) == canary
        assert versions(cookies={"lang": "de", "region": "eu"}) == canary  # among other cookies
        assert versions(cookies={"region": "us"}) == primary
        assert versions(cookies={"region": "europe"}) == primary
        assert versions() == primary
        assert versions({"x-canary": "always"}) == primary  # the header stage is over
        abort(app, revision=1)

"""Only a matching, firing, authenticated alert rolls a release back: another workload's alert, fired by
the real Prometheus rule and delivered by the real Alertmanager, and later resolved, changes nothing;
neither does a call without the token. (Its own Stack: the webhook counters then count only these.)"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from kubernetes import client

from canary.annotations import ENABLED, ROLLOUT
from sandbox.stack import WEBHOOK_TOKEN, Stack
from tests.e2e.harness import wait_for
from tests.e2e_full.support import NAMESPACE, ExampleApp, deployment, real_parts_marks

pytestmark = real_parts_marks()

SLOW = {"router": "nginx", "stages": [{"canary": {"weights": [10, 50], "interval": "5m"}}],
        "analysis": {"interval": "2s", "metrics": ["error-rate"]}, "progress-deadline": "5m",
        "rollback-on-alerts": ['severity="page"']}


def webhook_counters(stack: Stack) -> tuple[int, int]:
    """(alerts received, alerts that matched a release) from the controller's /metrics."""
    with urllib.request.urlopen(f"{stack.controller_url}/metrics", timeout=5) as answer:
        values = dict(line.split() for line in answer.read().decode().splitlines()
                      if line.startswith(("weir_alerts_received_total ", "weir_alerts_matched_total ")))
    return int(values["weir_alerts_received_total"]), int(values["weir_alerts_matched_total"])


def post_alert(stack: Stack, labels: dict[str, str], token: str | None) -> tuple[int, dict[str, Any]]:
    body = {"version": "4", "status": "firing", "receiver": "weir", "groupLabels": {}, "commonLabels": {},
            "alerts": [{"status": "firing", "labels": labels, "annotations": {"summary": "posted by the test"}}]}
    request = urllib.request.Request(f"{stack.controller_url}/alerts", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_only_a_matching_authenticated_firing_alert_rolls_the_release_back(stack: Stack) -> None:
    app = ExampleApp(stack, "web-steady", SLOW).create("1.0")
    apps: Any = client.AppsV1Api(stack.api_client)
    with app.load(rate=40):
        app.release("2.0", {})
        app.wait_weight(10)
        received, matched = webhook_counters(stack)

        # Another workload (not managed by Weir) trips the same rule; Alertmanager delivers it to Weir.
        other = deployment("web-other", "1.0", {"DEGRADED": "true"}, {})
        del other["metadata"]["annotations"][ENABLED], other["metadata"]["annotations"][ROLLOUT]
        other["spec"]["replicas"] = 1
        apps.create_namespaced_deployment(NAMESPACE, other)
        wait_for(lambda: webhook_counters(stack)[0] > received, 60, "Alertmanager to deliver web-other's alert",
                 interval=0.1)
        assert webhook_counters(stack)[1] == matched
        # Its pods go away, the alert resolves, and Alertmanager says so.
        received_firing = webhook_counters(stack)[0]
        apps.delete_namespaced_deployment("web-other", NAMESPACE)
        wait_for(lambda: webhook_counters(stack)[0] > received_firing, 60,
                 "Alertmanager to deliver the resolved alert", interval=0.1)
        assert webhook_counters(stack)[1] == matched

        labels = {"alertname": "DemoAppDegraded", "namespace": NAMESPACE, "deployment": app.name,
                  "severity": "page"}
        assert post_alert(stack, labels, token=None)[0] == 401
        assert post_alert(stack, labels, token="not-the-token")[0] == 401
        assert post_alert(stack, {**labels, "severity": "info"}, WEBHOOK_TOKEN) == (
            200, {"received": 1, "rollingBack": []})  # not selected by rollback-on-alerts
        assert webhook_counters(stack)[1] == matched
        state = app.state()
        assert (state["phase"], state["weight"], app.weight()) == ("Progressing", 10, 10), state

        # The control: the same alert, authenticated and selected, rolls it back.
        assert post_alert(stack, labels, WEBHOOK_TOKEN) == (200, {"received": 1,
                                                                   "rollingBack": [f"{NAMESPACE}/{app.name}"]})
        state = app.api.wait_phase("RolledBack", timeout=30, revision=1)
    assert state["message"].startswith("alert firing: DemoAppDegraded"), state["message"]
    assert app.weight() == 0

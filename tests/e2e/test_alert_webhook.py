"""The Alertmanager webhook on the controller: a matching firing alert rolls back; nothing else does."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.conftest import KubeTarget
from tests.e2e.harness import App, ControllerProcess, wait_for

pytestmark = pytest.mark.e2e
SLOW = {"router": "nginx", "stages": [{"canary": {"weights": [10, 50], "interval": "5m"}}],
        "rollback-on-alerts": ['severity="page"']}


def post(controller: ControllerProcess, body: Any, token: str | None = "test-token",
         raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{controller.port}/alerts", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def alert(namespace: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {"version": "4", "status": status, "receiver": "weir", "groupLabels": {}, "commonLabels": {},
            "alerts": [{"status": status, "labels": {"alertname": "CanaryErrors", "namespace": namespace,
                                                     **labels}, "annotations": {"summary": "5xx above 5%"}}]}


@pytest.fixture
def releasing(kube: KubeTarget, controller: ControllerProcess) -> App:
    app = App(kube.api_client, kube.namespace, "web").create(SLOW)
    app.wait_phase("Idle")
    app.set_image("example/web:2")
    wait_for(lambda: app.canary_weight() == 10, 30, "canary at 10%")
    return app


def test_a_matching_firing_alert_rolls_the_release_back(kube: KubeTarget, controller: ControllerProcess,
                                                        releasing: App) -> None:
    status, answer = post(controller, alert(kube.namespace, deployment="web", severity="page"))
    assert status == 200 and answer["rollingBack"] == [f"{kube.namespace}/web"]
    state = releasing.wait_phase("RolledBack", timeout=10)
    assert "CanaryErrors" in state["message"]
    assert releasing.canary_weight() == 0


def test_the_service_label_of_the_canary_also_names_the_release(kube: KubeTarget, controller: ControllerProcess,
                                                                releasing: App) -> None:
    status, answer = post(controller, alert(kube.namespace, service="web-canary", severity="page"))
    assert status == 200 and answer["rollingBack"] == [f"{kube.namespace}/web"]
    releasing.wait_phase("RolledBack", timeout=10)


@pytest.mark.parametrize("case", ["resolved", "other-workload", "not-selected", "unauthenticated", "wrong-token"])
def test_alerts_that_do_not_match_change_nothing(kube: KubeTarget, controller: ControllerProcess,
                                                 releasing: App, case: str) -> None:
    body = alert(kube.namespace, deployment="web", severity="page")
    token: str | None = "test-token"
    if case == "resolved":
        body = alert(kube.namespace, status="resolved", deployment="web", severity="page")
    elif case == "other-workload":
        body = alert(kube.namespace, deployment="api", severity="page")
    elif case == "not-selected":
        body = alert(kube.namespace, deployment="web", severity="ticket")
    elif case == "unauthenticated":
        token = None
    else:
        token = "guess"
    status, answer = post(controller, body, token=token)
    if case in ("unauthenticated", "wrong-token"):
        assert status == 401 and "bearer token" in answer["error"]
    else:
        assert status == 200 and answer["rollingBack"] == []
    # The release keeps going: still progressing at 10% after the controller's next looks.
    wait_for(lambda: "weir_reconciles_total" in metrics(controller), 5, "metrics")
    assert releasing.phase() == "Progressing" and releasing.canary_weight() == 10


@pytest.mark.parametrize(("raw", "code", "words"), [
    (b"{not json", 400, "not JSON"),
    (json.dumps({"version": "4", "alerts": "nope"}).encode(), 422, "alerts"),
    (json.dumps({"version": "3", "alerts": []}).encode(), 422, "version"),
    (json.dumps({"alerts": [{"labels": {"a": 1}}]}).encode(), 422, "alerts[0].labels"),
    (b"[" + b" " * (2 << 20) + b"]", 413, "larger"),
])
def test_malformed_or_oversized_bodies_get_a_clear_4xx(controller: ControllerProcess, raw: bytes, code: int,
                                                      words: str) -> None:
    status, answer = post(controller, None, raw=raw)
    assert status == code and words in answer["error"]


def metrics(controller: ControllerProcess) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{controller.port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_the_token_can_come_from_a_secret_and_without_one_the_webhook_is_off(kube: KubeTarget) -> None:
    from kubernetes import client

    client.CoreV1Api(kube.api_client).create_namespaced_secret(kube.namespace, {
        "metadata": {"name": "weir-webhook-token"}, "stringData": {"token": "from-the-secret"}})
    from_secret = ControllerProcess(kube.kubeconfig_path, kube.namespace, token_file=False,
                                    args=["--webhook-token-secret", f"{kube.namespace}/weir-webhook-token"])
    disabled = ControllerProcess(kube.kubeconfig_path, kube.namespace, token_file=False)
    try:
        body = alert(kube.namespace, deployment="nothing-here")
        assert post(from_secret, body, token="from-the-secret")[0] == 200
        assert post(from_secret, body, token="test-token")[0] == 401
        status, answer = post(disabled, body, token="anything")
        assert status == 503 and "no bearer token" in answer["error"]
    finally:
        from_secret.stop()
        disabled.stop()


def test_an_accepted_alert_survives_a_crash_right_after_the_answer(kube: KubeTarget, controller: ControllerProcess,
                                                                   releasing: App) -> None:
    # A controller that answers the webhook but never gets to reconcile (no workers), killed right after
    # its 200: only what it wrote before answering can carry the rollback to its successor.
    controller.stop()
    mute = ControllerProcess(kube.kubeconfig_path, kube.namespace, args=["--workers", "0"])
    try:
        wait_for(lambda: ready(mute), 30, "the mute controller to list Deployments")
        status, answer = post(mute, alert(kube.namespace, deployment="web", severity="page"))
        assert status == 200 and answer["rollingBack"] == [f"{kube.namespace}/web"]
        mute.process.kill()
        mute.process.wait(10)
    finally:
        mute.stop()
    assert releasing.phase() == "Progressing" and "CanaryErrors" in releasing.annotations()["weir.dev/alerts"]
    successor = ControllerProcess(kube.kubeconfig_path, kube.namespace)
    try:
        state = releasing.wait_phase("RolledBack", timeout=20)
        assert "CanaryErrors" in state["message"] and releasing.canary_weight() == 0
        assert "weir.dev/alerts" not in releasing.annotations()  # consumed with the rollback
    finally:
        successor.stop()


def ready(controller: ControllerProcess) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{controller.port}/readyz", timeout=5) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return False

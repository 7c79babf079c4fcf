"""End to end on the API emulator (or a real cluster): opt-in, releases, rollback, operator commands, opt-out."""

from __future__ import annotations

import pytest

from canary.annotations import ENABLED, STATE
from tests.conftest import KubeTarget
from tests.e2e.harness import App, ControllerProcess, Recorder, wait_for

pytestmark = pytest.mark.e2e


def test_opt_in_creates_primary_services_and_canary_ingress(app: App, controller: ControllerProcess) -> None:
    app.create()
    app.wait_phase("Idle")
    primary = app.deployment("web-primary")
    assert primary is not None
    assert primary["spec"]["selector"]["matchLabels"] == {"app": "web-primary"}
    assert primary["metadata"]["ownerReferences"][0]["name"] == "web"
    assert app.deployment()["spec"]["replicas"] == 0  # type: ignore[index]
    assert app.service("web")["spec"]["selector"] == {"app": "web-primary"}  # type: ignore[index]
    assert app.service("web-primary")["spec"]["selector"] == {"app": "web-primary"}  # type: ignore[index]
    assert app.service("web-canary")["spec"]["selector"] == {"app": "web"}  # type: ignore[index]
    canary = app.canary_ingress()
    assert canary is not None
    annotations = canary["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert app.canary_weight() == 0
    backend = canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    assert backend == "web-canary"
    reasons = {e["reason"] for e in app.events()}
    assert {"Initialized", "PrimaryUpdated", "RoutesEnsured"} <= reasons


def test_template_change_walks_the_ladder_and_promotes(kube: KubeTarget, app: App,
                                                        controller: ControllerProcess) -> None:
    app.create()
    app.wait_phase("Idle")
    recorder = Recorder(kube.api_client, kube.namespace).start()
    try:
        app.set_image("example/web:2")
        state = app.wait_phase("Idle", timeout=40, revision=1)
    finally:
        recorder.stop()
    assert recorder.canary_weights("web") == [0, 10, 50, 0]
    assert app.image("web-primary") == "example/web:2"
    assert app.deployment()["spec"]["replicas"] == 0  # type: ignore[index]
    assert app.canary_weight() == 0
    assert state["revision"] == 1 and state["primary_hash"] == state["canary_hash"]
    assert recorder.unsafe_moments("web") == []
    assert [e["reason"] for e in app.events()].count("Promoted") == 1


def test_canary_that_never_becomes_ready_is_rolled_back_at_the_deadline(app: App,
                                                                        controller: ControllerProcess) -> None:
    app.create()
    app.wait_phase("Idle")
    app.patch_template({"spec": {"containers": [{"name": "web", "image": "example/web:broken",
                                                  "readinessProbe": {"exec": {"command": ["false"]}}}]}})
    state = app.wait_phase("RolledBack", timeout=40)
    assert "progress deadline" in state["message"]
    assert app.image("web-primary") == "example/web:1"
    assert app.deployment()["spec"]["replicas"] == 0  # type: ignore[index]
    assert app.canary_weight() == 0
    assert any(e["reason"] == "RolledBack" and e["type"] == "Warning" for e in app.events())


def test_abort_rolls_back_at_once(app: App, controller: ControllerProcess) -> None:
    app.create({"router": "nginx", "stages": [{"canary": {"weights": [10, 50], "interval": "5m"}}]})
    app.wait_phase("Idle")
    app.set_image("example/web:2")
    wait_for(lambda: app.canary_weight() == 10, 30, "canary at 10%")
    app.command("abort")
    state = app.wait_phase("RolledBack", timeout=15)
    assert state["message"] == "aborted by operator"
    assert app.canary_weight() == 0 and app.image("web-primary") == "example/web:1"
    assert "weir.dev/command" not in app.deployment()["metadata"]["annotations"]  # type: ignore[index]


def test_promote_skips_the_remaining_steps(kube: KubeTarget, app: App, controller: ControllerProcess) -> None:
    app.create({"router": "nginx", "stages": [{"canary": {"weights": [10, 25, 50], "interval": "5m"}}]})
    app.wait_phase("Idle")
    recorder = Recorder(kube.api_client, kube.namespace).start()
    try:
        app.set_image("example/web:2")
        wait_for(lambda: app.canary_weight() == 10, 30, "canary at 10%")
        app.command("promote")
        app.wait_phase("Idle", timeout=20, revision=1)
    finally:
        recorder.stop()
    assert app.image("web-primary") == "example/web:2"
    assert recorder.canary_weights("web") == [0, 10, 0]


def test_service_router_blue_green_switches_the_apex_selector(app: App, controller: ControllerProcess) -> None:
    app.create({"router": "service", "stages": [{"blue-green": {"duration": "1s"}}], "progress-deadline": "8s"},
               ingress=False)
    app.wait_phase("Idle")
    assert app.service("web")["spec"]["selector"] == {"app": "web-primary"}  # type: ignore[index]
    app.set_image("example/web:2")
    wait_for(lambda: app.service("web")["spec"]["selector"] == {"app": "web"}, 20, "apex on canary")  # type: ignore[index]
    app.wait_phase("Idle", timeout=30, revision=1)
    assert app.service("web")["spec"]["selector"] == {"app": "web-primary"}  # type: ignore[index]
    assert app.image("web-primary") == "example/web:2"


def test_opt_out_hands_traffic_back_and_removes_what_weir_created(app: App, controller: ControllerProcess) -> None:
    app.create()
    app.wait_phase("Idle")
    app.annotate(ENABLED, None)
    wait_for(lambda: STATE not in (app.deployment()["metadata"].get("annotations") or {}), 30,  # type: ignore[index]
             "state annotation removed")
    assert app.deployment()["spec"]["replicas"] == 2  # type: ignore[index]
    assert app.service("web")["spec"]["selector"] == {"app": "web"}  # type: ignore[index]
    wait_for(lambda: app.deployment("web-primary") is None, 10, "primary deleted")
    assert app.service("web-primary") is None and app.service("web-canary") is None
    assert app.canary_ingress() is None


def test_unsafe_release_settings_leave_warning_events(app: App, controller: ControllerProcess) -> None:
    app.create()
    app.wait_phase("Idle")
    app.patch_template({"spec": {"containers": [{"name": "web", "image": "example/web:latest",
                                                 "readinessProbe": None, "lifecycle": None}]}})
    app.wait_phase("Idle", timeout=40, revision=1)
    warnings = [e["message"] for e in app.events() if e["reason"] == "UnsafeRelease"]
    assert any("readinessProbe" in w for w in warnings)
    assert any("latest" in w for w in warnings)
    assert any("preStop" in w for w in warnings)

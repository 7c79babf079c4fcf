"""People act on a Deployment while Weir is releasing it: a new template, `kubectl rollout undo`,
`kubectl scale`, `kubectl rollout pause/resume`, deleting what Weir created, opting out, breaking the
config. Every release must still end (promoted, rolled back or handed back) and traffic must never reach
a canary with no ready pods.

Human actions go through the real kubectl (or the official client), so these run unchanged against a
real cluster (WEIR_TEST_KUBECONFIG).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from canary.annotations import ENABLED, ROLLOUT, STATE
from tests.conftest import KubeTarget
from tests.e2e.harness import App, ControllerProcess, Recorder, app_objects, create, holds, kubectl, wait_for

pytestmark = pytest.mark.e2e

INTERVAL = 3.0  # seconds per canary step: long enough for an action to land while the canary is at 10%
LADDER: dict[str, Any] = {
    "router": "nginx",
    "stages": [{"canary": {"weights": [10, 50], "interval": f"{INTERVAL:.0f}s"}}],
    "progress-deadline": "20s",
}
SETTLE = 45.0  # deadline for a release to end after the action


@pytest.fixture
def recorder(kube: KubeTarget) -> Iterator[Recorder]:
    watching = Recorder(kube.api_client, kube.namespace).start()
    yield watching
    watching.stop()


def run_kubectl(kube: KubeTarget, *args: str) -> str:
    return kubectl(kube.kubeconfig_path, kube.namespace, *args).stdout


def start_release(app: App, image: str = "example/web:2") -> None:
    """Change the template and wait until the canary takes its first 10%."""
    app.set_image(image)
    wait_for(lambda: app.canary_weight() == 10, 30, f"canary of {image} at 10%")


def primary_image(app: App) -> str | None:
    primary = app.deployment(f"{app.name}-primary")
    return None if primary is None else str(primary["spec"]["template"]["spec"]["containers"][0]["image"])


def promoted_to(app: App, image: str) -> Callable[[], dict[str, Any] | None]:
    """Idle with `image` on primary, no canary traffic and the canary scaled to 0."""
    def settled() -> dict[str, Any] | None:
        state = app.state()
        if state.get("phase") == "Idle" and primary_image(app) == image and app.canary_weight() == 0 \
                and app.replicas() == 0:
            return state
        return None
    return settled


def handed_back(app: App, replicas: int) -> Callable[[], bool]:
    """As on opt-out: no state, nothing of Weir's left, the apex Service on the Deployment's own ready pods."""
    def done() -> bool:
        return (STATE not in app.annotations() and app.deployment(f"{app.name}-primary") is None
                and app.service(f"{app.name}-primary") is None and app.service(f"{app.name}-canary") is None
                and app.canary_ingress() is None
                and (app.service(app.name) or {}).get("spec", {}).get("selector") == {"app": app.name}
                and app.replicas() == replicas and app.ready_replicas() == replicas)
    return done


def describe(app: App) -> dict[str, Any]:
    """What the world looks like, for failure messages."""
    return {"state": app.state(), "weight": app.canary_weight(), "canary_replicas": app.replicas(),
            "canary_ready": app.ready_replicas(), "primary_image": primary_image(app),
            "primary_replicas": app.replicas(f"{app.name}-primary"),
            "apex": (app.service(app.name) or {}).get("spec", {}).get("selector"),
            "objects": {kind: sorted(app.names(kind)) for kind in ("Deployment", "Service", "Ingress")},
            "events": [f"{e.get('reason')}: {str(e.get('message'))[:120]}" for e in app.events()][-8:]}


def settle(app: App, condition: Callable[[], Any], what: str, timeout: float = SETTLE) -> Any:
    """wait_for, and on a timeout say what the world looked like instead."""
    try:
        return wait_for(condition, timeout, what)
    except AssertionError as error:
        raise AssertionError(f"{error}\nworld: {describe(app)}") from None


def test_template_change_mid_release_releases_and_promotes_the_newest(app: App, controller: ControllerProcess,
                                                                       recorder: Recorder) -> None:
    app.create(LADDER)
    before = app.wait_phase("Idle")["revision"]
    start_release(app, "example/web:2")
    app.set_image("example/web:3")
    state = settle(app, promoted_to(app, "example/web:3"), "example/web:3 promoted")
    assert state["revision"] > before
    assert app.image("web") == "example/web:3"
    assert recorder.images("web-primary") == ["example/web:1", "example/web:3"]  # 2 was never promoted
    assert recorder.unsafe_moments("web") == []


def replicaset_state(kube: KubeTarget, app: App, image: str) -> dict[str, Any]:
    """The weir.dev/state that the ReplicaSet of `image` carries (copied there by the Deployment controller)."""
    raw = app.apps.list_namespaced_replica_set(kube.namespace, label_selector=f"app={app.name}",
                                               _preload_content=False)
    [rs] = [rs for rs in json.loads(raw.data)["items"]
            if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image]
    text = (rs["metadata"].get("annotations") or {}).get(STATE)
    return dict(json.loads(text)) if text else {}


def test_rollout_undo_to_a_replicaset_with_a_stale_state_is_not_trusted(kube: KubeTarget, app: App,
                                                                        controller: ControllerProcess,
                                                                        recorder: Recorder) -> None:
    app.create(LADDER)
    app.wait_phase("Idle")
    app.set_image("example/web:2")
    settle(app, promoted_to(app, "example/web:2"), "example/web:2 promoted")
    start_release(app, "example/web:3")
    carried = replicaset_state(kube, app, "example/web:2")
    assert carried.get("phase") == "Idle", carried  # what the undo below writes back: stale mid-release
    run_kubectl(kube, "rollout", "undo", "deploy/web")
    assert app.image("web") == "example/web:2"

    settled = promoted_to(app, "example/web:2")
    settle(app, settled, "Idle with example/web:2 on primary and no canary traffic")
    holds(settled, 2 * INTERVAL, "the settled world")
    assert app.service("web")["spec"]["selector"] == {"app": "web-primary"}  # type: ignore[index]
    assert "example/web:3" not in recorder.images("web-primary")
    assert app.names("Deployment") == {"web", "web-primary"}
    assert app.names("Service") == {"web", "web-primary", "web-canary"}
    assert app.names("Ingress") == {"web", "web-canary"}
    assert recorder.unsafe_moments("web") == []


def test_rollout_undo_to_before_the_opt_in_hands_the_service_back(kube: KubeTarget, app: App,
                                                                  controller: ControllerProcess,
                                                                  recorder: Recorder) -> None:
    objects = app_objects("web", LADDER)
    weir_annotations = objects[0]["metadata"].pop("annotations")
    for obj in objects:
        create(kube.api_client, kube.namespace, obj)
    wait_for(lambda: app.ready_replicas() == 2, 30, "revision 1 ready before the opt-in")
    # Opt in together with a new template: revision 1's ReplicaSet never carries a weir.dev annotation.
    app.apps.patch_namespaced_deployment("web", kube.namespace, {
        "metadata": {"annotations": weir_annotations},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "example/web:2"}]}}}})
    settle(app, promoted_to(app, "example/web:2"), "opted in with example/web:2")
    start_release(app, "example/web:3")
    run_kubectl(kube, "rollout", "undo", "deploy/web", "--to-revision", "1")
    assert ENABLED not in app.annotations()

    settle(app, handed_back(app, replicas=2), "the service handed back to web")
    assert app.image("web") == "example/web:1"
    assert recorder.unsafe_moments("web") == []


def test_kubectl_scale_mid_release_is_the_new_size_after_promotion(kube: KubeTarget, app: App,
                                                                   controller: ControllerProcess,
                                                                   recorder: Recorder) -> None:
    app.create(LADDER, replicas=2)
    app.wait_phase("Idle")
    start_release(app)
    run_kubectl(kube, "scale", "deploy/web", "--replicas", "3")
    settle(app, promoted_to(app, "example/web:2"), "example/web:2 promoted")
    settle(app, lambda: app.replicas("web-primary") == 3 and app.ready_replicas("web-primary") == 3,
           "web-primary at 3 ready replicas", 20)
    holds(lambda: app.replicas() == 0 and app.replicas("web-primary") == 3, INTERVAL, "web 0, web-primary 3")
    assert recorder.unsafe_moments("web") == []


def test_rollout_pause_holds_the_weight_and_resume_finishes_the_release(kube: KubeTarget, app: App,
                                                                        controller: ControllerProcess,
                                                                        recorder: Recorder) -> None:
    app.create(LADDER)
    app.wait_phase("Idle")
    start_release(app)
    run_kubectl(kube, "rollout", "pause", "deploy/web")
    state = settle(app, lambda: app.state() if app.phase() == "Paused" else None, "phase Paused", 10)
    weight = app.canary_weight()
    assert weight is not None and weight > 0 and weight == state["weight"], describe(app)
    holds(lambda: app.phase() == "Paused" and app.canary_weight() == weight, 3 * INTERVAL,
          f"paused at weight {weight}")
    run_kubectl(kube, "rollout", "resume", "deploy/web")
    settle(app, promoted_to(app, "example/web:2"), "example/web:2 promoted after resume")
    assert recorder.unsafe_moments("web") == []


def _uid(app: App, kind: str, name: str) -> str | None:
    obj = app.canary_ingress() if kind == "ingress" else app.service(name)
    return None if obj is None else str(obj["metadata"]["uid"])


@pytest.mark.parametrize(("kind", "name"), [("ingress", "web-canary"), ("service", "web-canary"),
                                            ("service", "web-primary")])
def test_a_deleted_weir_object_is_recreated_and_the_release_ends(kube: KubeTarget, app: App,
                                                                 controller: ControllerProcess,
                                                                 recorder: Recorder, kind: str, name: str) -> None:
    app.create(LADDER)
    app.wait_phase("Idle")
    start_release(app)
    doomed = _uid(app, kind, name)
    assert doomed is not None
    run_kubectl(kube, "delete", kind, name, "--wait=true", "--timeout=20s")

    settle(app, lambda: _uid(app, kind, name) not in (None, doomed), f"{kind} {name} re-created", 20)
    recreated = settle(app, lambda: [e for e in app.events() if e.get("reason") == "Recreated"],
                       "Recreated Event", 10)
    assert any(name in e.get("message", "") for e in recreated), [e.get("message") for e in recreated]

    def ended() -> dict[str, Any] | None:
        state = app.state()
        if (state.get("phase") == "Idle" and state.get("revision") == 1) or state.get("phase") == "RolledBack":
            return state if app.canary_weight() == 0 and app.replicas() == 0 else None
        return None
    settle(app, ended, "the release promoted or rolled back")
    assert _uid(app, kind, name) is not None, f"{kind} {name} missing after the release ended"
    assert recorder.unsafe_moments("web") == []


def test_opt_out_mid_release_hands_the_service_back(kube: KubeTarget, app: App, controller: ControllerProcess,
                                                    recorder: Recorder) -> None:
    app.create(LADDER)
    app.wait_phase("Idle")
    start_release(app)
    run_kubectl(kube, "annotate", "deploy/web", f"{ENABLED}-")
    settle(app, handed_back(app, replicas=2), "the service handed back to web")
    assert app.image("web") == "example/web:2"  # the Deployment is the source of truth
    assert recorder.unsafe_moments("web") == []


BROKEN = {**LADDER, "stages": [{"canary": {"weights": [10, 150], "interval": f"{INTERVAL:.0f}s"}}]}
BROKEN_PATH = "weir.dev/rollout.stages[0].canary.weights[1]"


def break_config_mid_release(kube: KubeTarget, app: App) -> None:
    app.create(LADDER)
    app.wait_phase("Idle")
    start_release(app)
    run_kubectl(kube, "annotate", "deploy/web", "--overwrite", f"{ROLLOUT}={yaml.safe_dump(BROKEN)}")
    state = settle(app, lambda: app.state() if app.phase() == "Invalid" else None, "phase Invalid", 10)
    assert BROKEN_PATH in state["message"], state["message"]


def test_invalid_config_mid_release_moves_traffic_to_primary_and_the_fix_resumes(
        kube: KubeTarget, app: App, controller: ControllerProcess, recorder: Recorder) -> None:
    break_config_mid_release(kube, app)
    settle(app, lambda: app.canary_weight() == 0, "canary weight 0 while Invalid", 10)
    holds(lambda: app.phase() == "Invalid" and app.canary_weight() == 0 and app.replicas() == 2, 2 * INTERVAL,
          "Invalid, traffic on primary, the canary kept at 2 replicas")
    run_kubectl(kube, "annotate", "deploy/web", "--overwrite", f"{ROLLOUT}={yaml.safe_dump(LADDER)}")
    settle(app, promoted_to(app, "example/web:2"), "example/web:2 promoted after the fix")
    assert recorder.unsafe_moments("web") == []


def test_a_firing_alert_rolls_back_a_release_whose_config_became_invalid(
        kube: KubeTarget, app: App, controller: ControllerProcess, recorder: Recorder) -> None:
    break_config_mid_release(kube, app)
    answer = controller.fire_alert(kube.namespace, deployment="web", severity="page")
    assert answer.get("rollingBack") == [f"{kube.namespace}/web"], (answer, describe(app))
    # Rolled back; with the configuration still invalid the phase then says Invalid again, and remembers
    # that it comes back to RolledBack once the configuration is fixed.
    settle(app, lambda: app.state().get("resume_phase") == "RolledBack" or app.phase() == "RolledBack",
           "rolled back", 15)
    rolled_back = [e["message"] for e in app.events() if e.get("reason") == "RolledBack"]
    assert any("CanaryErrors" in message for message in rolled_back), rolled_back
    settle(app, lambda: app.canary_weight() == 0 and app.replicas() == 0, "canary drained", 20)
    assert primary_image(app) == "example/web:1"
    assert recorder.unsafe_moments("web") == []

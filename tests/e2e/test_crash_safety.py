"""Crash safety: SIGKILL the controller after each action of a release in turn, restart it, and every
run must end exactly like an uninterrupted one: promoted once, and never traffic on an unready canary."""

from __future__ import annotations

import signal

import pytest

from tests.conftest import KubeTarget
from tests.e2e.harness import App, ControllerProcess, Recorder, wait_for

pytestmark = pytest.mark.e2e


def primary_template_changes(recorder: Recorder, name: str) -> int:
    generations = set()
    for _, kind, _, obj in recorder.timeline():
        if kind == "Deployment" and obj["metadata"]["name"] == f"{name}-primary":
            generations.add(obj["metadata"].get("generation"))
    return len(generations) - 1  # the first generation seen is the pre-release one


def final_world(app: App) -> dict[str, object]:
    state = app.state()
    return {
        "phase": state["phase"], "revision": state["revision"],
        "primary_image": app.image(f"{app.name}-primary"),
        "canary_replicas": app.deployment()["spec"]["replicas"],  # type: ignore[index]
        "primary_replicas": app.deployment(f"{app.name}-primary")["spec"]["replicas"],  # type: ignore[index]
        "weight": app.canary_weight(),
        "apex": app.service(app.name)["spec"]["selector"],  # type: ignore[index]
    }


def release_with_crash(kube: KubeTarget, name: str, crash_after: int | None) -> tuple[dict[str, object], bool,
                                                                                       Recorder]:
    app = App(kube.api_client, kube.namespace, name).create()
    setup = ControllerProcess(kube.kubeconfig_path, kube.namespace)
    try:
        app.wait_phase("Idle")
    finally:
        setup.stop()
    recorder = Recorder(kube.api_client, kube.namespace).start()
    crashed = False
    try:
        app.set_image("example/web:2")
        if crash_after is not None:
            doomed = ControllerProcess(kube.kubeconfig_path, kube.namespace,
                                       args=["--crash-after-actions", str(crash_after)])
            try:
                wait_for(lambda: doomed.process.poll() is not None or (app.state().get("revision") == 1
                         and app.phase() == "Idle"), 40, "crash or completion")
                if doomed.process.poll() is None:  # finished the release with fewer actions than crash_after
                    doomed.stop()
                else:
                    crashed = doomed.process.returncode == -signal.SIGKILL
            finally:
                doomed.stop()
        survivor = ControllerProcess(kube.kubeconfig_path, kube.namespace)
        try:
            app.wait_phase("Idle", timeout=40, revision=1)
        finally:
            survivor.stop()
    finally:
        recorder.stop()
    return final_world(app), crashed, recorder


def test_sigkill_after_every_action_of_a_release_ends_in_the_same_state(kube: KubeTarget) -> None:
    expected, _, baseline = release_with_crash(kube, "base", None)
    assert expected["primary_image"] == "example/web:2" and expected["weight"] == 0
    assert primary_template_changes(baseline, "base") == 1
    crashes = 0
    for k in range(1, 20):
        name = f"crash{k}"
        world, crashed, recorder = release_with_crash(kube, name, k)
        world["apex"] = {"app": "base-primary"} if world["apex"] == {"app": f"{name}-primary"} else world["apex"]
        assert world == expected, f"crash after action {k}: {world} != {expected}"
        assert recorder.unsafe_moments(name) == [], f"crash after action {k}"
        assert primary_template_changes(recorder, name) == 1, f"crash after action {k}: primary updated twice"
        promoted = [e for e in App(kube.api_client, kube.namespace, name).events() if e["reason"] == "Promoted"]
        assert len(promoted) == 1, f"crash after action {k}: {len(promoted)} Promoted events"
        if not crashed:
            break
        crashes += 1
    assert crashes >= 5, "a release has at least five actions to crash after"

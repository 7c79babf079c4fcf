"""Bad input: a Warning Event and phase Invalid naming the field and the fix, and no object changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from canary.annotations import ROLLOUT
from tests.conftest import KubeTarget
from tests.e2e.harness import App, ControllerProcess, app_objects, create, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def controller(kube: KubeTarget) -> Iterator[ControllerProcess]:
    process = ControllerProcess(kube.kubeconfig_path, kube.namespace)
    yield process
    process.stop()


def _selector_with_expressions(objects: list[dict[str, Any]]) -> None:
    objects[0]["spec"]["selector"] = {"matchLabels": {"app": "bad"},
                                      "matchExpressions": [{"key": "tier", "operator": "Exists"}]}
    objects[0]["spec"]["template"]["metadata"]["labels"]["tier"] = "web"


CASES: list[tuple[str, Any, str, str]] = [
    ("unknown-key", {"router": "nginx", "stagez": []}, "weir.dev/rollout.stagez", "did you mean 'stages'"),
    ("wrong-type", {"router": "nginx", "stages": {"canary": 1}}, "weir.dev/rollout.stages", "YAML list"),
    ("missing-ingress", {"router": "nginx", "ingress": "nope"}, "weir.dev/rollout.ingress", "create Ingress"),
    ("unusable-router", {"router": "istio"}, "weir.dev/rollout.router", "use one of"),
    ("partial-weights-on-service", {"router": "service", "stages": [{"canary": {"weights": [10]}}]},
     "weir.dev/rollout.stages[0].canary", "router nginx"),
    ("weight-out-of-range", {"stages": [{"canary": {"weights": [10, 150]}}]},
     "weir.dev/rollout.stages[0].canary.weights[1]", "from 1 to 100"),
    ("not-yaml", "router: [nginx", "weir.dev/rollout", "YAML"),
    ("set-based-selector", None, "spec.selector.matchExpressions", "matchLabels only"),
]


@pytest.mark.parametrize(("case", "rollout", "field", "fix"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_invalid_with_field_and_fix_and_changes_nothing(
        kube: KubeTarget, controller: ControllerProcess, case: str, rollout: Any, field: str, fix: str) -> None:
    name = "bad"
    objects = app_objects(name, rollout if isinstance(rollout, dict) else {}, ingress=case != "missing-ingress")
    if isinstance(rollout, str):
        objects[0]["metadata"]["annotations"][ROLLOUT] = rollout
    if case == "set-based-selector":
        _selector_with_expressions(objects)
    for obj in objects:
        create(kube.api_client, kube.namespace, obj)
    app = App(kube.api_client, kube.namespace, name)
    service_before = app.service(name)
    state = app.wait_phase("Invalid", timeout=20)
    assert field in state["message"], state["message"]
    assert fix in state["message"], state["message"]
    warnings = wait_for(lambda: [e for e in app.events() if e["type"] == "Warning"], 10, "warning event")
    assert any(field in e["message"] for e in warnings)
    # Nothing else changed: no primary, no Services or Ingress of ours, the Deployment and Service as they were.
    assert app.deployment(f"{name}-primary") is None
    assert app.service(f"{name}-primary") is None and app.service(f"{name}-canary") is None
    assert app.canary_ingress() is None
    assert app.deployment()["spec"]["replicas"] == 2  # type: ignore[index]
    assert app.service(name)["spec"]["selector"] == service_before["spec"]["selector"]  # type: ignore[index]


def test_fixing_the_config_resumes(kube: KubeTarget, controller: ControllerProcess) -> None:
    app = App(kube.api_client, kube.namespace, "web").create({"router": "nginx", "stagez": []})
    app.wait_phase("Invalid", timeout=20)
    app.annotate(ROLLOUT, yaml.safe_dump({"router": "nginx"}))
    app.wait_phase("Idle", timeout=20)
    assert app.deployment("web-primary") is not None

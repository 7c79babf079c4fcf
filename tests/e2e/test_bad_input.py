"""Bad input: a Warning Event and phase Invalid naming the field and the fix, and no object changed."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import yaml

from canary.annotations import ROLLOUT
from tests.conftest import KubeTarget
from tests.e2e.harness import App, ControllerProcess, app_objects, create, wait_for

pytestmark = pytest.mark.e2e


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


MESSAGE_LIMIT = 1100  # an Invalid message names the field and the fix; it never echoes a huge value back


def assert_nothing_else_changed(app: App, name: str, service_before: dict[str, Any] | None, replicas: int) -> None:
    assert app.deployment(f"{name}-primary") is None
    assert app.service(f"{name}-primary") is None and app.service(f"{name}-canary") is None
    assert app.canary_ingress() is None
    assert app.deployment()["spec"]["replicas"] == replicas  # type: ignore[index]
    assert app.service(name)["spec"]["selector"] == service_before["spec"]["selector"]  # type: ignore[index]


@pytest.mark.parametrize("rollout", ["stages: " + "[" * 3000 + "]" * 3000, "router: " + "n" * 200_000],
                         ids=["nested-3000-deep", "200-KB-value"])
def test_pathological_rollout_is_invalid_with_a_short_message(kube: KubeTarget, controller: ControllerProcess,
                                                              rollout: str) -> None:
    name = "bad"
    objects = app_objects(name, {})
    objects[0]["metadata"]["annotations"][ROLLOUT] = rollout
    for obj in objects:
        create(kube.api_client, kube.namespace, obj)
    app = App(kube.api_client, kube.namespace, name)
    service_before = app.service(name)
    state = app.wait_phase("Invalid", timeout=20)
    assert "weir.dev/rollout" in state["message"] and len(state["message"]) <= MESSAGE_LIMIT, \
        (len(state["message"]), state["message"][:300])
    warnings = wait_for(lambda: [e for e in app.events() if e["type"] == "Warning"], 10, "warning event")
    assert any("weir.dev/rollout" in e["message"] and len(e["message"]) <= MESSAGE_LIMIT for e in warnings), \
        [e["message"][:300] for e in warnings]
    assert_nothing_else_changed(app, name, service_before, replicas=2)


MALFORMED: list[tuple[str, Any]] = [
    ("stages-not-a-list", {"stages": "canary"}),
    ("weights-not-a-list", {"stages": [{"canary": {"weights": "10,50"}}]}),
    ("weight-not-a-number", {"stages": [{"canary": {"weights": ["ten"]}}]}),
    ("weights-decreasing", {"stages": [{"canary": {"weights": [50, 10]}}]}),
    ("weight-zero", {"stages": [{"canary": {"weights": [0, 50]}}]}),
    ("weight-10**30", {"stages": [{"canary": {"weights": [10**30]}}]}),
    ("catastrophic-header-regex", {"stages": [{"ab": {"header": "x-canary", "pattern": "(a+)+$"}}]}),
    ("unclosed-header-regex", {"stages": [{"ab": {"header": "x-canary", "pattern": "([a-z"}}]}),
    ("unbalanced-promql", {"analysis": {"metrics": [{"name": "p", "query": "sum(rate(", "max": 1}]}}),
    ("duration-overflow", {"stages": [{"canary": {"weights": [10], "interval": "99999999999999999999h"}}]}),
    ("duration-unit", {"stages": [{"ab": {"header": "x", "value": "y", "duration": "5 parsecs"}}]}),
    ("max-weight-without-step-weight", {"stages": [{"canary": {"max-weight": 50}}]}),
    ("two-kinds-in-one-stage", {"stages": [{"canary": {"weights": [10]}, "ab": {"header": "x", "value": "y"}}]}),
    ("alpha-out-of-range", {"analysis": {"alpha": 2}}),
    ("alpha-not-a-number", {"analysis": {"alpha": "low"}}),
    ("unknown-judge", {"analysis": {"judge": "magic"}}),
    ("sub-second-analysis-interval", {"analysis": {"interval": "500ms"}}),
    ("negative-deadline", {"progress-deadline": "-5s"}),
    ("matcher-without-operator", {"rollback-on-alerts": ["severity"]}),
    ("top-level-list", "- router\n- nginx\n"),
    ("tab-indented", "router: nginx\n\tstages: []\n"),
]


def test_malformed_rollouts_are_each_invalid_while_a_healthy_release_promotes(kube: KubeTarget,
                                                                              controller: ControllerProcess) -> None:
    healthy = App(kube.api_client, kube.namespace, "web").create()
    healthy.wait_phase("Idle")
    healthy.set_image("example/web:2")
    bad: dict[str, App] = {}
    for i, (case, rollout) in enumerate(MALFORMED):
        name = f"bad-{i}"
        objects = app_objects(name, {"router": "nginx", **rollout} if isinstance(rollout, dict) else {}, replicas=1)
        if isinstance(rollout, str):
            objects[0]["metadata"]["annotations"][ROLLOUT] = rollout
        for obj in objects:
            create(kube.api_client, kube.namespace, obj)
        bad[case] = App(kube.api_client, kube.namespace, name)

    def wrong() -> dict[str, str]:
        """Cases not (yet) Invalid with a message that starts with the field path."""
        states = {case: app.state() for case, app in bad.items()}
        return {case: f"{s.get('phase')}: {str(s.get('message'))[:120]}" for case, s in states.items()
                if s.get("phase") != "Invalid" or not str(s.get("message", "")).startswith("weir.dev/rollout")}
    with contextlib.suppress(AssertionError):  # reported below, case by case
        wait_for(lambda: not wrong(), 30, "every malformed rollout Invalid")
    problems = wrong()
    with contextlib.suppress(AssertionError):
        healthy.wait_phase("Idle", timeout=30, revision=1)
    promoted = healthy.phase() == "Idle" and healthy.image("web-primary") == "example/web:2"
    assert problems == {} and promoted, {"malformed": problems, "healthy": healthy.state()}

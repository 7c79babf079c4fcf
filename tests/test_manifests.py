"""The install manifests, the example app and the Dockerfile: parseable, least-privilege, locked down."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.factory import detect_router
from adapters.kube import deployments, ingresses
from adapters.nginx_ingress import routes_to_service
from sandbox.apiserver import SandboxThread

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
Obj = dict[str, Any]


def documents(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def all_objects() -> list[Obj]:
    return [doc for path in sorted(MANIFESTS.rglob("*.yaml")) for doc in documents(path)]


def one(kind: str, name: str, objects: list[Obj] | None = None) -> Obj:
    found = [o for o in objects or all_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def containers(deployment: Obj) -> list[Obj]:
    return list(deployment["spec"]["template"]["spec"]["containers"])


def probe_port(container: Obj, probe: str) -> int:
    """The container port number a probe targets (resolving a named port)."""
    port = container[probe]["httpGet"]["port"]
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container.get("ports", []) if p.get("name") == port)


def rules_of(kind: str) -> Iterator[tuple[str, Obj]]:
    for obj in all_objects():
        if obj["kind"] == kind:
            for rule in obj["rules"]:
                yield obj["metadata"]["name"], rule


def test_every_manifest_is_an_api_object_with_a_name() -> None:
    objects = all_objects()

    assert objects
    for obj in objects:
        assert obj.get("apiVersion") and obj.get("kind"), obj
        assert obj["metadata"].get("name"), obj


def test_the_kustomization_installs_every_top_level_manifest() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "Kustomization").read_text())

    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS.glob("*.yaml"))


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_builds_the_install() -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(MANIFESTS)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(built) if doc)

    expected = ["ClusterRole", "ClusterRoleBinding", "Deployment", "Namespace", "Role", "RoleBinding"]
    assert kinds == sorted([*expected, "Service", "ServiceAccount"])


def test_no_rbac_rule_uses_a_wildcard() -> None:
    for kind in ("ClusterRole", "Role"):
        for name, rule in rules_of(kind):
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{kind} {name} has * in {field}"


def granted(kind: str) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, over every rule of every `kind` object."""
    grants: dict[tuple[str, str], set[str]] = {}
    for _, rule in rules_of(kind):
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


def test_the_cluster_role_grants_exactly_what_the_controller_uses() -> None:
    crud = {"get", "list", "watch", "create", "update", "patch", "delete"}

    assert granted("ClusterRole") == {
        ("apps", "deployments"): crud,
        ("apps", "deployments/scale"): {"get", "update", "patch"},
        ("", "services"): crud,
        ("", "configmaps"): {"get", "create", "update"},
        ("networking.k8s.io", "ingresses"): crud,
        ("", "events"): {"create", "patch"},
        ("events.k8s.io", "events"): {"create", "patch"},
        ("gateway.networking.k8s.io", "httproutes"): crud,
        ("networking.istio.io", "virtualservices"): crud,
    }


def test_secrets_and_leases_are_reachable_only_in_weir_system_and_by_name() -> None:
    role = one("Role", "weir-controller")

    assert role["metadata"]["namespace"] == "weir-system"
    assert granted("Role") == {("", "secrets"): {"get"}, ("coordination.k8s.io", "leases"): {"create", "get", "update"}}
    for rule in role["rules"]:
        if rule["verbs"] != ["create"]:  # create cannot be restricted by name
            assert rule.get("resourceNames"), rule


def test_the_role_bindings_give_the_roles_to_the_controllers_service_account() -> None:
    objects = all_objects()
    account = one("ServiceAccount", "weir-controller", objects)
    deployment = one("Deployment", "weir-controller", objects)

    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        binding = one(kind, "weir-controller", objects)
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "weir-controller", "namespace": "weir-system"}
        ]


def test_the_controller_runs_non_root_read_only_without_capabilities() -> None:
    pod = one("Deployment", "weir-controller")["spec"]["template"]["spec"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert "add" not in security["capabilities"]
        assert container["resources"]["requests"] and container["resources"]["limits"]


def test_the_controller_is_probed_on_healthz_and_readyz_at_8080() -> None:
    (container,) = containers(one("Deployment", "weir-controller"))

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probe_port(container, "livenessProbe") == probe_port(container, "readinessProbe") == 8080


def test_the_webhook_token_is_a_secret_file_at_var_run_weir() -> None:
    deployment = one("Deployment", "weir-controller")
    (container,) = containers(deployment)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/var/run/weir"]
    secret = volumes[mount["name"]]["secret"]

    assert mount["readOnly"] is True
    assert secret["secretName"] == "weir-webhook-token"
    assert [item["path"] for item in secret["items"]] == ["webhook-token"]
    assert "--webhook-token-file=/var/run/weir/webhook-token" in container["args"]


def test_the_controller_service_reaches_the_metrics_and_webhook_port() -> None:
    objects = all_objects()
    service = one("Service", "weir-controller", objects)
    deployment = one("Deployment", "weir-controller", objects)
    (container,) = containers(deployment)
    (port,) = service["spec"]["ports"]

    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert {p["name"]: p["containerPort"] for p in container["ports"]}[port["targetPort"]] == 8080


def example(kind: str, name: str) -> Obj:
    return one(kind, name, [doc for path in sorted((MANIFESTS / "example").glob("*.yaml")) for doc in documents(path)])


def test_the_example_app_is_opted_in_with_an_nginx_rollout_that_parses() -> None:
    annotations = example("Deployment", "web")["metadata"]["annotations"]
    rollout = yaml.safe_load(annotations["weir.dev/rollout"])

    assert annotations["weir.dev/enabled"] == "true"
    assert rollout["router"] == "nginx"
    assert rollout["ingress"] == "web"


def test_the_example_rollout_is_valid_weir_config() -> None:
    config = pytest.importorskip("canary.config")

    spec = config.parse_rollout(example("Deployment", "web")["metadata"]["annotations"])

    assert spec.router == "nginx"
    assert spec.ingress == "web"


def test_the_example_pods_have_a_readiness_probe_and_a_pre_stop_pause() -> None:
    for container in containers(example("Deployment", "web")):
        assert container["readinessProbe"]["httpGet"]["path"]
        assert container["lifecycle"]["preStop"]


def test_the_example_service_and_ingress_lead_to_the_example_pods() -> None:
    deployment, service, ingress = example("Deployment", "web"), example("Service", "web"), example("Ingress", "web")
    (container,) = containers(deployment)
    (port,) = service["spec"]["ports"]

    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert routes_to_service(ingress, "web")


def test_the_dockerfile_builds_on_python_slim_and_runs_weir_as_a_numeric_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in dockerfile.splitlines() if line and not line[0].isspace()]
    keyed = [(words[0], words[1] if len(words) > 1 else "") for words in instructions if words[0].isupper()]

    assert {arg.split()[0] for key, arg in keyed if key == "FROM"} == {"python:3.11-slim"}
    users = [arg for key, arg in keyed if key == "USER"]
    assert users and re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1])
    entrypoints = [arg for key, arg in keyed if key == "ENTRYPOINT"]
    assert json.loads(entrypoints[-1]) == ["weir", "run"]


def kubectl_apply(kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    """Apply the tree as the README says; the example lands in the kubeconfig's namespace (default)."""
    command = ["kubectl", "--kubeconfig", str(kubeconfig), "apply", "-R", "-f", str(MANIFESTS)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_applies_the_whole_tree_to_the_emulator_and_reapplying_changes_nothing(
    sandbox: SandboxThread,
) -> None:
    first = kubectl_apply(sandbox.kubeconfig_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(" created") == len(all_objects())

    again = kubectl_apply(sandbox.kubeconfig_path)

    assert again.returncode == 0, again.stderr
    assert again.stdout.count(" unchanged") == len(all_objects())
    api = sandbox.api_client()
    try:
        assert deployments(api).get("weir-system", "weir-controller") is not None
        assert ingresses(api).get("default", "web") is not None
        # Opting in alone would pick the router the example's rollout names.
        assert detect_router(api, "default", "web") == "nginx"
    finally:
        api.close()


def test_the_controllers_arguments_are_flags_weir_run_accepts() -> None:
    from canary.cli import build_parser

    (container,) = containers(one("Deployment", "weir-controller"))

    parsed = build_parser().parse_args(["run", *container["args"]])

    assert parsed.webhook_token_file == "/var/run/weir/webhook-token"
    assert parsed.listen.endswith(":8080")


def test_the_controller_elects_a_leader_on_the_lease_its_role_grants_and_upgrades_by_recreate() -> None:
    from canary.cli import build_parser

    deployment = one("Deployment", "weir-controller")
    (container,) = containers(deployment)
    parsed = build_parser().parse_args(["run", *container["args"]])
    assert parsed.leader_elect is True
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}
    assert env["POD_NAMESPACE"] == "metadata.namespace" and env["POD_NAME"] == "metadata.name"
    # The Lease the Role lets the controller get/update by name is the one it campaigns on.
    lease_rules = [rule for doc in all_objects() if doc["kind"] in ("Role", "ClusterRole") for rule in doc["rules"]
                   if "leases" in rule.get("resources", []) and rule.get("resourceNames")]
    assert any(parsed.leader_elect_name in rule["resourceNames"] for rule in lease_rules)
    # A standby is not ready, so a rolling update would wait for it forever.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}

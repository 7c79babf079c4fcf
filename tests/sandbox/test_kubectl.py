"""kubectl 1.32 works against the emulator: get (single, list, -l, -o json), apply, annotate, patch, delete."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.apiserver import SandboxThread

from .helpers import deployment, unique, wait_for

KUBECTL = shutil.which("kubectl")
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH (install kubectl 1.32 to run these)")

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def sb() -> Iterator[SandboxThread]:
    with SandboxThread() as running:
        yield running


@pytest.fixture
def kubectl(sb: SandboxThread, tmp_path: Path) -> Kubectl:
    """Run kubectl against the sandbox in a fresh namespace; fails the test on a non-zero exit unless check=False."""
    namespace = unique("kc")
    env = dict(os.environ, KUBECONFIG=str(sb.kubeconfig_path))
    cache = tmp_path / "kube-cache"  # discovery is cached per server; keep each test's cache its own

    def run(*args: str, stdin: str | None = None, check: bool = True, namespaced: bool = True) -> Any:
        command = [str(KUBECTL), "--cache-dir", str(cache), *(["-n", namespace] if namespaced else []), *args]
        result = subprocess.run(command, input=stdin, env=env, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr}")
        return result

    run("apply", "-f", "-", stdin=manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        namespaced=False)
    run.namespace = namespace  # type: ignore[attr-defined]
    return run


def manifest(*objects: dict[str, Any]) -> str:
    return yaml.safe_dump_all(objects)


def configmap(name: str, **labels: str) -> str:
    return manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
                     "data": {"k": "v"}})


def test_apply_creates_then_configures_with_a_strategic_merge(kubectl: Kubectl) -> None:
    body = deployment("web", replicas=1)
    assert "deployment.apps/web created" in kubectl("apply", "-f", "-", stdin=manifest(body)).stdout
    kubectl("annotate", "deploy", "web", "keep=me")  # a field apply does not own must survive
    body["spec"]["replicas"] = 2
    body["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "2"
    assert "deployment.apps/web configured" in kubectl("apply", "-f", "-", stdin=manifest(body)).stdout
    live = json.loads(kubectl("get", "deploy", "web", "-o", "json").stdout)
    assert live["spec"]["replicas"] == 2
    assert live["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "VERSION", "value": "2"}]
    assert live["metadata"]["annotations"]["keep"] == "me"
    assert "kubectl.kubernetes.io/last-applied-configuration" in live["metadata"]["annotations"]
    assert "unchanged" in kubectl("apply", "-f", "-", stdin=manifest(body)).stdout


def test_get_single_list_label_selector_and_json(kubectl: Kubectl) -> None:
    for name, tier in (("a", "web"), ("b", "db")):
        kubectl("apply", "-f", "-", stdin=configmap(name))
        kubectl("label", "configmap", name, f"tier={tier}")
    assert kubectl("get", "configmap", "a", "-o", "name").stdout.split() == ["configmap/a"]
    listing = json.loads(kubectl("get", "configmaps", "-o", "json").stdout)
    assert listing["kind"] == "List" and [i["metadata"]["name"] for i in listing["items"]] == ["a", "b"]
    selected = json.loads(kubectl("get", "configmaps", "-l", "tier=db", "-o", "json").stdout)
    assert [i["metadata"]["name"] for i in selected["items"]] == ["b"]
    assert kubectl("get", "configmaps", "-l", "tier in (web,db),tier!=web", "-o", "name").stdout.split() == \
        ["configmap/b"]
    table = kubectl("get", "configmaps").stdout.splitlines()
    assert table[0].split() == ["NAME", "AGE"] and [line.split()[0] for line in table[1:]] == ["a", "b"]
    missing = kubectl("get", "configmap", "nope", check=False)
    assert missing.returncode != 0 and 'configmaps "nope" not found' in missing.stderr


def test_annotate_and_overwrite(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=manifest(deployment("web", replicas=0)))
    kubectl("annotate", "deploy", "web", "weir.dev/enabled=true")
    refused = kubectl("annotate", "deploy", "web", "weir.dev/enabled=false", check=False)
    assert refused.returncode != 0 and "overwrite" in refused.stderr
    kubectl("annotate", "deploy", "web", "--overwrite", "weir.dev/enabled=false")
    live = json.loads(kubectl("get", "deploy", "web", "-o", "json").stdout)
    assert live["metadata"]["annotations"]["weir.dev/enabled"] == "false"
    kubectl("annotate", "deploy", "web", "weir.dev/enabled-")
    live = json.loads(kubectl("get", "deploy", "web", "-o", "json").stdout)
    assert "weir.dev/enabled" not in live["metadata"].get("annotations", {})


def test_patch_strategic_merge_and_json_patch(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=manifest(deployment("web", replicas=0)))
    kubectl("patch", "deploy", "web", "-p", json.dumps({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "example/app:2"}]}}}}))
    kubectl("patch", "deploy", "web", "--type", "json", "-p",
            json.dumps([{"op": "replace", "path": "/spec/replicas", "value": 2}]))
    kubectl("patch", "deploy", "web", "--type", "merge", "-p", json.dumps({"metadata": {"labels": {"x": "y"}}}))
    live = json.loads(kubectl("get", "deploy", "web", "-o", "json").stdout)
    [container] = live["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "example/app:2" and container["env"] == [{"name": "VERSION", "value": "1"}]
    assert live["spec"]["replicas"] == 2 and live["metadata"]["labels"]["x"] == "y"


def test_scale_and_rollout_status(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=manifest(deployment("web", replicas=1)))
    kubectl("scale", "deploy", "web", "--replicas=3")
    assert "successfully rolled out" in kubectl("rollout", "status", "deploy/web", "--timeout=20s").stdout
    live = json.loads(kubectl("get", "deploy", "web", "-o", "json").stdout)
    assert live["status"]["availableReplicas"] == 3
    pods = json.loads(kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    assert len(pods) == 3


def test_delete_by_name_and_by_label(kubectl: Kubectl) -> None:
    for name in ("a", "b", "c"):
        kubectl("apply", "-f", "-", stdin=configmap(name))
    kubectl("label", "configmap", "b", "c", "doomed=yes")
    assert 'configmap "a" deleted' in kubectl("delete", "configmap", "a").stdout
    kubectl("delete", "configmap", "-l", "doomed=yes")
    assert kubectl("get", "configmaps", "-o", "name").stdout.split() == []
    kubectl("apply", "-f", "-", stdin=manifest(deployment("web", replicas=2)))
    kubectl("rollout", "status", "deploy/web", "--timeout=20s")
    kubectl("delete", "deploy", "web", "--wait=true", "--timeout=20s")
    assert json.loads(kubectl("get", "deploy", "-o", "json").stdout)["items"] == []


def test_crd_then_custom_resource(kubectl: Kubectl) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "httproutes.gateway.networking.k8s.io"},
           "spec": {"group": "gateway.networking.k8s.io", "scope": "Namespaced",
                    "names": {"kind": "HTTPRoute", "plural": "httproutes", "singular": "httproute"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                                  "schema": {"openAPIV3Schema": {"type": "object",
                                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}
    kubectl("apply", "-f", "-", stdin=manifest(crd), namespaced=False)
    route: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "web"},
        "spec": {"rules": [{"backendRefs": [{"name": "web-primary", "port": 80, "weight": 100}]}]}}
    kubectl("apply", "-f", "-", stdin=manifest(route))
    route["spec"]["rules"][0]["backendRefs"].append({"name": "web-canary", "port": 80, "weight": 0})
    kubectl("apply", "-f", "-", stdin=manifest(route))  # custom resources: apply falls back to merge patch
    live = json.loads(kubectl("get", "httproute", "web", "-o", "json").stdout)
    assert [b["name"] for b in live["spec"]["rules"][0]["backendRefs"]] == ["web-primary", "web-canary"]


@pytest.mark.skipif(not MANIFESTS.is_dir(), reason="no manifests/ directory in this checkout")
def test_apply_the_projects_manifests(kubectl: Kubectl) -> None:
    applied = kubectl("apply", "-f", str(MANIFESTS), namespaced=False)
    assert "created" in applied.stdout
    again = kubectl("apply", "-f", str(MANIFESTS), namespaced=False).stdout.splitlines()
    assert again and all(line.endswith(" unchanged") for line in again), again


def test_typed_create_commands_get_a_clear_refusal(kubectl: Kubectl) -> None:
    """`kubectl create <kind>` sends protobuf, which the sandbox does not decode; it says what to do instead."""
    refused = kubectl("create", "configmap", "x", "--from-literal=k=v", check=False)
    assert refused.returncode != 0 and "use `kubectl apply -f`" in refused.stderr


def test_rollout_undo_returns_to_the_previous_replicaset(kubectl: Kubectl) -> None:
    body = deployment("web", replicas=1)
    kubectl("apply", "-f", "-", stdin=manifest(body))
    kubectl("rollout", "status", "deploy/web", "--timeout=20s")
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "example/app:2"
    kubectl("apply", "-f", "-", stdin=manifest(body))
    kubectl("rollout", "status", "deploy/web", "--timeout=20s")
    kubectl("rollout", "undo", "deploy/web")
    kubectl("rollout", "status", "deploy/web", "--timeout=20s")
    history = kubectl("rollout", "history", "deploy/web").stdout.split()
    assert history[history.index("CHANGE-CAUSE") + 1::2] == ["2", "3"]  # revision 1's ReplicaSet came back as 3
    live = json.loads(kubectl("get", "deploy", "web", "-o", "json").stdout)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "example/app:1"
    assert "creationTimestamp" not in live["spec"]["template"]["metadata"]


def test_get_watch_prints_rows_as_the_deployment_becomes_ready(sb: SandboxThread, kubectl: Kubectl,
                                                                 tmp_path: Path) -> None:
    kubectl("apply", "-f", "-", stdin=manifest(deployment("web", replicas=2)))
    namespace = kubectl.namespace  # type: ignore[attr-defined]
    command = [str(KUBECTL), "--cache-dir", str(tmp_path / "watch-cache"), "-n", namespace, "get", "deploy", "-w"]
    process = subprocess.Popen(command, env=dict(os.environ, KUBECONFIG=str(sb.kubeconfig_path)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rows = []
    deadline = threading.Timer(30, process.kill)  # the read below ends at the latest when this fires
    deadline.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            rows.append(line.split())
            if rows[-1][:2] == ["web", "2/2"]:
                break
    finally:
        deadline.cancel()
        process.kill()
        process.wait()
    assert rows[0][:4] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE"]
    assert rows[-1][:2] == ["web", "2/2"] and all(len(r) == len(rows[0]) for r in rows)


def live_deployment(kubectl: Kubectl, name: str = "web") -> dict[str, Any]:
    return dict(json.loads(kubectl("get", "deploy", name, "-o", "json").stdout))


def replicasets_by_revision(kubectl: Kubectl) -> dict[str, dict[str, Any]]:
    items = json.loads(kubectl("get", "rs", "-o", "json").stdout)["items"]
    return {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs for rs in items}


def image_of(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def roll_out(kubectl: Kubectl, image: str, **annotations: str) -> None:
    """A new template, then annotations written while its ReplicaSet is the Deployment's new one."""
    kubectl("set", "image", "deploy/web", f"app={image}")
    if annotations:
        kubectl("annotate", "deploy", "web", "--overwrite", *(f"{k}={v}" for k, v in annotations.items()))
    kubectl("rollout", "status", "deploy/web", "--timeout=20s")


def test_replicasets_carry_the_deployments_annotations_except_the_skipped_ones(kubectl: Kubectl) -> None:
    body = deployment("web", replicas=2)
    body["metadata"]["annotations"] = {"weir.dev/enabled": "true", "deployment.kubernetes.io/max-replicas": "99"}
    kubectl("apply", "-f", "-", stdin=manifest(body))
    kubectl("rollout", "status", "deploy/web", "--timeout=20s")
    kubectl("annotate", "deploy", "web", "weir.dev/state=settled")  # copied onto the current ReplicaSet too
    [rs] = wait_for(lambda: [r for r in replicasets_by_revision(kubectl).values()
                             if r["metadata"]["annotations"].get("weir.dev/state") == "settled"], 10, "copied")
    annotations = rs["metadata"]["annotations"]
    assert annotations["weir.dev/enabled"] == "true"
    assert annotations["deployment.kubernetes.io/revision"] == "1"
    assert annotations["deployment.kubernetes.io/desired-replicas"] == "2"
    assert annotations["deployment.kubernetes.io/max-replicas"] == "3"  # 2 + 25% surge rounded up, not copied
    assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations


def test_rollout_undo_restores_the_template_and_the_annotations_its_replicaset_carried(kubectl: Kubectl) -> None:
    body = deployment("web", replicas=1)
    body["metadata"]["annotations"] = {"weir.dev/enabled": "true", "weir.dev/state": "first"}
    kubectl("apply", "-f", "-", stdin=manifest(body))
    kubectl("rollout", "status", "deploy/web", "--timeout=20s")
    kubectl("annotate", "deploy", "web", "--overwrite", "weir.dev/state=first-settled")
    roll_out(kubectl, "example/app:2", **{"weir.dev/state": "second", "weir.dev/later": "yes"})
    applied = live_deployment(kubectl)["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]

    kubectl("rollout", "undo", "deploy/web")
    kubectl("rollout", "status", "deploy/web", "--timeout=20s")
    live = live_deployment(kubectl)
    assert image_of(live) == "example/app:1"
    annotations = live["metadata"]["annotations"]
    assert annotations["weir.dev/state"] == "first-settled"  # what revision 1's ReplicaSet last carried
    assert annotations["weir.dev/enabled"] == "true"
    assert "weir.dev/later" not in annotations  # written after revision 1 stopped being the new ReplicaSet
    assert annotations["kubectl.kubernetes.io/last-applied-configuration"] == applied  # kept from the Deployment
    assert annotations["deployment.kubernetes.io/revision"] == "3"
    undone = replicasets_by_revision(kubectl)["3"]
    assert image_of(undone) == "example/app:1"
    assert undone["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"


def test_rollout_undo_to_revision_restores_that_revisions_annotations(kubectl: Kubectl) -> None:
    body = deployment("web", replicas=1)
    body["metadata"]["annotations"] = {"weir.dev/state": "one"}
    kubectl("apply", "-f", "-", stdin=manifest(body))
    kubectl("rollout", "status", "deploy/web", "--timeout=20s")
    roll_out(kubectl, "example/app:2", **{"weir.dev/state": "two"})
    roll_out(kubectl, "example/app:3", **{"weir.dev/state": "three"})
    kubectl("rollout", "undo", "deploy/web", "--to-revision", "2")
    kubectl("rollout", "status", "deploy/web", "--timeout=20s")
    live = live_deployment(kubectl)
    assert image_of(live) == "example/app:2" and live["metadata"]["annotations"]["weir.dev/state"] == "two"
    missing = kubectl("rollout", "undo", "deploy/web", "--to-revision", "7", check=False)
    assert missing.returncode != 0 and "revision" in missing.stderr


def test_pause_holds_the_template_but_not_the_size_and_resume_rolls_out(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=manifest(deployment("web", replicas=1)))
    kubectl("rollout", "status", "deploy/web", "--timeout=20s")
    kubectl("rollout", "pause", "deploy/web")
    assert live_deployment(kubectl)["spec"]["paused"] is True
    kubectl("set", "image", "deploy/web", "app=example/app:2")
    kubectl("scale", "deploy/web", "--replicas", "3")

    def scaled_on_the_old_template() -> bool:
        sets = list(replicasets_by_revision(kubectl).values())
        return len(sets) == 1 and image_of(sets[0]) == "example/app:1" and \
            (sets[0].get("status") or {}).get("readyReplicas") == 3
    wait_for(scaled_on_the_old_template, 20, "3 ready pods of the paused template")
    assert set(replicasets_by_revision(kubectl)) == {"1"}  # still no ReplicaSet for the new template

    kubectl("rollout", "resume", "deploy/web")
    assert not live_deployment(kubectl)["spec"].get("paused")
    kubectl("rollout", "status", "deploy/web", "--timeout=20s")
    live = live_deployment(kubectl)
    assert live["status"]["updatedReplicas"] == 3 and live["status"]["availableReplicas"] == 3
    newest = replicasets_by_revision(kubectl)["2"]
    assert image_of(newest) == "example/app:2" and newest["spec"]["replicas"] == 3

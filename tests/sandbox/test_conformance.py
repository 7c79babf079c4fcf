"""The emulator behaves like kube-apiserver wherever a controller relies on it.

Each test pins one behaviour, through the official client where it exposes it and raw HTTP where it
hides the detail (status codes, Status bodies, content types).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
import requests
from kubernetes import watch
from kubernetes.client.rest import ApiException

from sandbox.apiserver import SandboxThread

from .helpers import Raw, deployment, unique, wait_for

# The generated client's stubs ask for model objects; these tests send plain dicts, as the API allows.
client: Any = kubernetes.client


@pytest.fixture(scope="module")
def sb() -> Iterator[SandboxThread]:
    with SandboxThread(bookmark_interval=0.2) as running:
        yield running


@pytest.fixture
def raw(sb: SandboxThread) -> Raw:
    return Raw(sb.url)


@pytest.fixture
def api(sb: SandboxThread) -> Iterator[Any]:
    api_client = sb.api_client()
    yield api_client
    api_client.close()


@pytest.fixture
def ns(raw: Raw) -> str:
    name = unique("ns")
    assert raw.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}}).status_code == 201
    return name


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": data}


# ----- create / get / list / update / delete


def test_create_answers_201_with_server_set_metadata(raw: Raw, ns: str) -> None:
    response = raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("a", x="1"))
    assert response.status_code == 201
    meta = response.json()["metadata"]
    assert meta["namespace"] == ns and meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0 and meta["generation"] == 1


def test_custom_object_create_returns_the_object_through_the_official_client(api: Any, raw: Raw, ns: str) -> None:
    _create_widget_crd(raw)
    created = client.CustomObjectsApi(api).create_namespaced_custom_object(
        "example.com", "v1", ns, "widgets", {"apiVersion": "example.com/v1", "kind": "Widget",
                                             "metadata": {"name": "w"}, "spec": {"size": 1}})
    assert created is not None and created["metadata"]["name"] == "w"


def test_get_list_and_list_metadata(api: Any, raw: Raw, ns: str) -> None:
    core = client.CoreV1Api(api)
    for name in ("b", "a"):
        core.create_namespaced_config_map(ns, configmap(name))
    assert core.read_namespaced_config_map("a", ns).metadata.name == "a"
    listing = raw.request("GET", f"/api/v1/namespaces/{ns}/configmaps").json()
    assert listing["kind"] == "ConfigMapList" and listing["apiVersion"] == "v1"
    assert int(listing["metadata"]["resourceVersion"]) >= max(
        int(i["metadata"]["resourceVersion"]) for i in listing["items"])
    assert [i["metadata"]["name"] for i in listing["items"]] == ["a", "b"]


def test_resource_version_is_one_increasing_counter_across_kinds(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    first = int(core.create_namespaced_config_map(ns, configmap("a")).metadata.resource_version)
    second = int(core.create_namespaced_secret(ns, {"metadata": {"name": "s"}}).metadata.resource_version)
    third = int(core.patch_namespaced_config_map("a", ns, {"data": {"k": "v"}}).metadata.resource_version)
    assert first < second < third


def test_put_with_stale_resource_version_is_409_conflict(api: Any, raw: Raw, ns: str) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(ns, configmap("a", k="1"))
    body = client.ApiClient().sanitize_for_serialization(created)
    body["data"] = {"k": "2"}
    updated = raw.request("PUT", f"/api/v1/namespaces/{ns}/configmaps/a", body)
    assert updated.status_code == 200
    assert int(updated.json()["metadata"]["resourceVersion"]) > int(created.metadata.resource_version)
    body["data"] = {"k": "3"}  # still carries the first resourceVersion
    stale = raw.request("PUT", f"/api/v1/namespaces/{ns}/configmaps/a", body)
    assert stale.status_code == 409
    status = stale.json()
    assert (status["kind"], status["status"], status["reason"], status["code"]) == ("Status", "Failure", "Conflict",
                                                                                    409)
    assert "the object has been modified" in status["message"]
    with pytest.raises(ApiException) as error:
        core.replace_namespaced_config_map("a", ns, body)
    assert error.value.status == 409
    assert core.read_namespaced_config_map("a", ns).data == {"k": "2"}


def test_put_without_resource_version_is_unconditional(raw: Raw, ns: str) -> None:
    raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("a", k="1"))
    response = raw.request("PUT", f"/api/v1/namespaces/{ns}/configmaps/a", configmap("a", k="2"))
    assert response.status_code == 200 and response.json()["data"] == {"k": "2"}


def test_duplicate_create_is_409_already_exists(raw: Raw, ns: str) -> None:
    raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    response = raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    assert response.status_code == 409
    status = response.json()
    assert status["reason"] == "AlreadyExists" and status["details"]["name"] == "a"
    assert status["message"] == 'configmaps "a" already exists'


def test_missing_object_is_404_not_found_status(raw: Raw, ns: str) -> None:
    response = raw.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/nope")
    assert response.status_code == 404
    status = response.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "NotFound", 404)
    assert status["message"] == 'deployments.apps "nope" not found'
    assert status["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


def test_invalid_object_is_422_naming_the_field(raw: Raw, ns: str) -> None:
    body = deployment("web")
    del body["spec"]["selector"]
    response = raw.request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", body)
    assert response.status_code == 422
    status = response.json()
    assert status["reason"] == "Invalid" and status["details"]["kind"] == "Deployment"
    assert "spec.selector" in [c["field"] for c in status["details"]["causes"]]
    zero = deployment("web", strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0,
                                                                                   "maxUnavailable": 0}})
    response = raw.request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", zero)
    assert response.status_code == 422
    assert "spec.strategy.rollingUpdate.maxUnavailable" in response.json()["message"]


def test_deployment_selector_is_immutable(raw: Raw, ns: str) -> None:
    raw.request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("web", replicas=0))
    patch = {"spec": {"selector": {"matchLabels": {"app": "other"}},
                      "template": {"metadata": {"labels": {"app": "other"}}}}}
    response = raw.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/web", patch,
                           "application/merge-patch+json")
    assert response.status_code == 422 and "field is immutable" in response.json()["message"]


def test_mismatched_kind_is_400_bad_request(raw: Raw, ns: str) -> None:
    response = raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                           {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})
    assert response.status_code == 400 and response.json()["reason"] == "BadRequest"


def test_malformed_query_parameters_are_400(raw: Raw, ns: str) -> None:
    response = raw.request("GET", f"/api/v1/namespaces/{ns}/configmaps", watch="true", timeoutSeconds="soon")
    assert response.status_code == 400 and "timeoutSeconds" in response.json()["message"]
    raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    response = raw.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps/a", gracePeriodSeconds="x")
    assert response.status_code == 400
    assert raw.request("GET", f"/api/v1/namespaces/{ns}/configmaps", labelSelector="a in (b").status_code == 400


def test_generate_name(raw: Raw, ns: str) -> None:
    response = raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"generateName": "job-"}})
    assert response.status_code == 201
    name = response.json()["metadata"]["name"]
    assert name.startswith("job-") and len(name) > len("job-")


def test_delete_answers_status_success_and_object_is_gone(raw: Raw, ns: str) -> None:
    raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    response = raw.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps/a")
    assert response.status_code == 200 and response.json()["status"] == "Success"
    assert raw.request("GET", f"/api/v1/namespaces/{ns}/configmaps/a").status_code == 404
    assert raw.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps/a").status_code == 404


def test_deleted_pods_and_services_answer_the_object(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_service(ns, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    assert core.delete_namespaced_service("web", ns).metadata.name == "web"
    core.create_namespaced_pod(ns, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    assert core.delete_namespaced_pod("p", ns, grace_period_seconds=0).metadata.name == "p"


def test_finalizers_hold_deletion_until_removed(raw: Raw, ns: str) -> None:
    body = configmap("a")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body)
    held = raw.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps/a").json()
    assert held["metadata"]["deletionTimestamp"]
    assert raw.request("GET", f"/api/v1/namespaces/{ns}/configmaps/a").status_code == 200
    raw.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/a", {"metadata": {"finalizers": None}},
                "application/merge-patch+json")
    assert raw.request("GET", f"/api/v1/namespaces/{ns}/configmaps/a").status_code == 404


def test_dry_run_stores_nothing(raw: Raw, ns: str) -> None:
    response = raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("a"), dryRun="All")
    assert response.status_code == 201
    assert raw.request("GET", f"/api/v1/namespaces/{ns}/configmaps/a").status_code == 404


# ----- generation, status and scale


def test_generation_bumps_on_spec_change_only(api: Any, ns: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("web", replicas=0))
    assert apps.read_namespaced_deployment("web", ns).metadata.generation == 1
    apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"tier": "x"}, "annotations": {"a": "b"}}})
    assert apps.read_namespaced_deployment("web", ns).metadata.generation == 1
    apps.patch_namespaced_deployment_status("web", ns, {"status": {"observedGeneration": 1, "replicas": 0}})
    assert apps.read_namespaced_deployment("web", ns).metadata.generation == 1
    apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 1}})
    assert apps.read_namespaced_deployment("web", ns).metadata.generation == 2


def test_status_subresource_changes_only_status(raw: Raw, ns: str) -> None:
    _create_widget_crd(raw)  # a kind no sandbox controller writes to
    base = f"/apis/example.com/v1/namespaces/{ns}/widgets"
    raw.request("POST", base, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                               "spec": {"size": 1}})
    current = raw.request("GET", f"{base}/w").json()
    current["spec"]["size"] = 5
    current["status"] = {"observedGeneration": 7}
    after = raw.request("PUT", f"{base}/w/status", current).json()
    assert after["status"]["observedGeneration"] == 7 and after["spec"]["size"] == 1
    assert after["metadata"]["generation"] == 1
    after["status"] = {"observedGeneration": 99}
    after["spec"]["size"] = 2
    main = raw.request("PUT", f"{base}/w", after).json()
    assert main["status"]["observedGeneration"] == 7  # the main resource ignores status
    assert main["spec"]["size"] == 2 and main["metadata"]["generation"] == 2


def test_create_ignores_status_for_kinds_with_a_status_subresource(raw: Raw, ns: str) -> None:
    body = deployment("web", replicas=0, paused=True)
    body["status"] = {"availableReplicas": 5, "observedGeneration": 9}
    created = raw.request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", body).json()
    assert created.get("status", {}).get("availableReplicas") is None


def test_service_keeps_its_cluster_ip_across_updates(raw: Raw, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/services"
    created = raw.request("POST", base, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}).json()
    assert created["spec"]["clusterIP"]
    replaced = raw.request("PUT", f"{base}/web", {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 81}]}})
    assert replaced.json()["spec"]["clusterIP"] == created["spec"]["clusterIP"]


def test_scale_subresource_get_put_patch(api: Any, raw: Raw, ns: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("web", replicas=1, paused=True))
    scale = raw.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale").json()
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 1 and scale["status"]["selector"] == "app=web"
    apps.replace_namespaced_deployment_scale("web", ns, {"metadata": {"name": "web"}, "spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 3
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 0}})
    assert apps.read_namespaced_deployment_scale("web", ns).spec.replicas == 0
    assert apps.read_namespaced_deployment("web", ns).metadata.generation == 3


# ----- patch


def test_merge_patch_replaces_lists_and_null_deletes(raw: Raw, ns: str) -> None:
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    raw.request("POST", base, deployment("web", replicas=0))
    patch = {"metadata": {"labels": {"app": None, "new": "1"}},
             "spec": {"template": {"spec": {"containers": [{"name": "other", "image": "x:2"}]}}}}
    patched = raw.request("PATCH", f"{base}/web", patch, "application/merge-patch+json").json()
    assert patched["metadata"]["labels"] == {"new": "1"}
    assert [c["name"] for c in patched["spec"]["template"]["spec"]["containers"]] == ["other"]


def test_json_patch_operations_and_failed_test_is_422(raw: Raw, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps/a"
    raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("a", k="1"))
    operations = [{"op": "add", "path": "/data/j", "value": "2"}, {"op": "replace", "path": "/data/k", "value": "3"},
                  {"op": "add", "path": "/metadata/labels", "value": {"a/b": "c"}}]
    patched = raw.request("PATCH", path, operations, "application/json-patch+json").json()
    assert patched["data"] == {"k": "3", "j": "2"} and patched["metadata"]["labels"] == {"a/b": "c"}
    removed = raw.request("PATCH", path, [{"op": "remove", "path": "/metadata/labels/a~1b"}],
                          "application/json-patch+json").json()
    assert removed["metadata"]["labels"] == {}
    failed = raw.request("PATCH", path, [{"op": "test", "path": "/data/k", "value": "nope"}],
                         "application/json-patch+json")
    assert failed.status_code == 422


def test_strategic_merge_merges_containers_env_and_ports_by_key(raw: Raw, ns: str) -> None:
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    body = deployment("web", replicas=0)
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "side:1"})
    raw.request("POST", base, body)
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "example/app:2", "env": [{"name": "EXTRA", "value": "x"}],
         "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9090}]}]}}}}
    patched = raw.request("PATCH", f"{base}/web", patch, "application/strategic-merge-patch+json").json()
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "sidecar"]
    app = containers[0]
    assert app["image"] == "example/app:2"
    assert [e["name"] for e in app["env"]] == ["VERSION", "EXTRA"]
    assert [(p["containerPort"], p.get("name")) for p in app["ports"]] == [(8080, "http"), (9090, None)]


def test_strategic_merge_volumes_mounts_and_init_containers_by_key(raw: Raw, ns: str) -> None:
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    body = deployment("web", replicas=0)
    pod = body["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "config", "configMap": {"name": "a"}}]
    pod["initContainers"] = [{"name": "init", "image": "init:1"}]
    pod["containers"][0]["volumeMounts"] = [{"name": "config", "mountPath": "/etc/app"}]
    raw.request("POST", base, body)
    patch = {"spec": {"template": {"spec": {
        "volumes": [{"name": "cache", "emptyDir": {}}],
        "initContainers": [{"name": "init", "image": "init:2"}],
        "containers": [{"name": "app", "volumeMounts": [{"name": "cache", "mountPath": "/cache"},
                                                        {"name": "config", "mountPath": "/etc/app",
                                                         "readOnly": True}]}]}}}}
    after = raw.request("PATCH", f"{base}/web", patch, "application/strategic-merge-patch+json").json()
    spec = after["spec"]["template"]["spec"]
    assert [v["name"] for v in spec["volumes"]] == ["config", "cache"]
    assert [(c["name"], c["image"]) for c in spec["initContainers"]] == [("init", "init:2")]
    mounts = spec["containers"][0]["volumeMounts"]
    assert [(m["mountPath"], m.get("readOnly")) for m in mounts] == [("/etc/app", True), ("/cache", None)]


def test_strategic_merge_retain_keys_and_element_order(raw: Raw, ns: str) -> None:
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    body = deployment("web", replicas=0)
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "side:1"})
    raw.request("POST", base, body)
    patch = {"spec": {
        "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None},
        "template": {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                              "containers": [{"name": "sidecar", "image": "side:2"}]}}}}
    after = raw.request("PATCH", f"{base}/web", patch, "application/strategic-merge-patch+json").json()
    assert after["spec"]["strategy"] == {"type": "Recreate"}
    assert [(c["name"], c["image"]) for c in after["spec"]["template"]["spec"]["containers"]] == [
        ("sidecar", "side:2"), ("app", "example/app:1")]


def test_strategic_merge_directives_delete_and_replace(raw: Raw, ns: str) -> None:
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    body = deployment("web", replicas=0)
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "side:1"})
    raw.request("POST", base, body)
    delete = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    after = raw.request("PATCH", f"{base}/web", delete, "application/strategic-merge-patch+json").json()
    assert [c["name"] for c in after["spec"]["template"]["spec"]["containers"]] == ["app"]
    replace = {"metadata": {"labels": {"$patch": "replace", "only": "this"}}}
    after = raw.request("PATCH", f"{base}/web", replace, "application/strategic-merge-patch+json").json()
    assert after["metadata"]["labels"] == {"only": "this"}


def test_strategic_merge_service_ports_merge_by_port(raw: Raw, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/services"
    raw.request("POST", base, {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
                                                                    "ports": [{"port": 80, "name": "http"}]}})
    patch = {"spec": {"ports": [{"port": 443, "name": "https"}, {"port": 80, "targetPort": 8080}]}}
    ports = raw.request("PATCH", f"{base}/web", patch, "application/strategic-merge-patch+json").json()["spec"]["ports"]
    assert sorted((p["port"], p["targetPort"], p["name"]) for p in ports) == [(80, 8080, "http"), (443, 443, "https")]


def test_strategic_merge_on_custom_resource_is_415(raw: Raw, ns: str) -> None:
    _create_widget_crd(raw)
    raw.request("POST", f"/apis/example.com/v1/namespaces/{ns}/widgets",
                {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    response = raw.request("PATCH", f"/apis/example.com/v1/namespaces/{ns}/widgets/w", {"spec": {"a": 1}},
                           "application/strategic-merge-patch+json")
    assert response.status_code == 415
    merged = raw.request("PATCH", f"/apis/example.com/v1/namespaces/{ns}/widgets/w", {"spec": {"a": 1}},
                         "application/merge-patch+json")
    assert merged.status_code == 200 and merged.json()["spec"] == {"a": 1}


def test_patch_with_stale_resource_version_is_409(raw: Raw, ns: str) -> None:
    created = raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("a")).json()
    raw.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/a", {"data": {"x": "1"}}, "application/merge-patch+json")
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"x": "2"}}
    response = raw.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/a", stale, "application/merge-patch+json")
    assert response.status_code == 409 and response.json()["reason"] == "Conflict"


# ----- selectors


@pytest.mark.parametrize(("selector", "expected"), [
    ("tier=web", ["a", "b"]),
    ("tier==web", ["a", "b"]),
    ("tier!=web", ["c", "d"]),
    ("tier in (web,db)", ["a", "b", "c"]),
    ("tier notin (web)", ["c", "d"]),
    ("track", ["b"]),
    ("!track", ["a", "c", "d"]),
    ("tier=web,track=canary", ["b"]),
    ("tier in (web, db),!track", ["a", "c"]),
])
def test_label_selectors(api: Any, ns: str, selector: str, expected: list[str]) -> None:
    core = client.CoreV1Api(api)
    for name, labels in (("a", {"tier": "web"}), ("b", {"tier": "web", "track": "canary"}), ("c", {"tier": "db"}),
                         ("d", {})):
        core.create_namespaced_config_map(ns, configmap(name, labels))
    found = core.list_namespaced_config_map(ns, label_selector=selector).items
    assert sorted(i.metadata.name for i in found) == expected


def test_field_selectors_name_and_namespace(api: Any, raw: Raw, ns: str) -> None:
    core = client.CoreV1Api(api)
    for name in ("a", "b"):
        core.create_namespaced_config_map(ns, configmap(name))
    assert [i.metadata.name for i in core.list_namespaced_config_map(ns, field_selector="metadata.name=b").items] \
        == ["b"]
    everywhere = core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={ns}").items
    assert sorted(i.metadata.name for i in everywhere) == ["a", "b"]
    assert [i.metadata.name for i in core.list_namespaced_config_map(ns, field_selector="metadata.name!=a").items] \
        == ["b"]
    assert raw.request("GET", f"/api/v1/namespaces/{ns}/configmaps", fieldSelector="spec.x=1").status_code == 400


# ----- watch


def _events(api: Any, ns: str, **kwargs: Any) -> list[tuple[str, str, Any]]:
    core = client.CoreV1Api(api)
    stream = watch.Watch().stream(core.list_namespaced_config_map, ns, timeout_seconds=1, **kwargs)
    return [(e["type"], e["raw_object"]["metadata"].get("name", ""), e["raw_object"]) for e in stream]


def test_watch_from_resource_version_replays_changes_in_order(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, configmap("a"))
    core.patch_namespaced_config_map("a", ns, {"data": {"k": "v"}})
    core.create_namespaced_config_map(ns, configmap("b"))
    core.delete_namespaced_config_map("a", ns)
    seen = _events(api, ns, resource_version=start)
    assert [(t, n) for t, n, _ in seen] == [("ADDED", "a"), ("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    versions = [int(o["metadata"]["resourceVersion"]) for _, _, o in seen]
    assert versions == sorted(versions)


def test_watch_without_resource_version_starts_with_current_objects(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, configmap("a"))
    assert [(t, n) for t, n, _ in _events(api, ns)] == [("ADDED", "a")]


def test_watch_streams_live_events_and_accepts_watch_1(api: Any, raw: Raw, ns: str) -> None:
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    timer = threading.Timer(0.2, lambda: core.create_namespaced_config_map(ns, configmap("late")))
    timer.start()
    watcher = watch.Watch()
    seen = []
    try:
        for event in watcher.stream(core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=30):
            seen.append((event["type"], event["object"].metadata.name))
            watcher.stop()
    finally:
        timer.join()
    assert seen == [("ADDED", "late")]
    response = raw.request("GET", f"/api/v1/namespaces/{ns}/configmaps", watch="1", resourceVersion=start,
                           timeoutSeconds="1")
    assert response.status_code == 200 and '"type":"ADDED"' in response.text


def test_watch_with_label_selector_sees_objects_leave_and_enter(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, configmap("a", {"track": "canary"}))
    core.patch_namespaced_config_map("a", ns, {"metadata": {"labels": {"track": "stable"}}})
    core.patch_namespaced_config_map("a", ns, {"metadata": {"labels": {"track": "canary"}}})
    seen = _events(api, ns, resource_version=start, label_selector="track=canary")
    assert [(t, n) for t, n, _ in seen] == [("ADDED", "a"), ("DELETED", "a"), ("ADDED", "a")]


def test_watch_timeout_seconds_closes_the_stream(raw: Raw, ns: str) -> None:
    response = raw.request("GET", f"/api/v1/namespaces/{ns}/configmaps", watch="true", timeoutSeconds="1")
    assert response.status_code == 200 and response.text == ""


def test_watch_bookmarks_carry_the_current_resource_version(api: Any, raw: Raw, ns: str) -> None:
    core = client.CoreV1Api(api)
    latest = core.create_namespaced_config_map(ns, configmap("a")).metadata.resource_version
    response = raw.request("GET", f"/api/v1/namespaces/{ns}/configmaps", watch="true", timeoutSeconds="1",
                           allowWatchBookmarks="true", resourceVersion=latest)
    events = [json.loads(line) for line in response.text.splitlines()]
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks, events
    assert bookmarks[0]["object"]["kind"] == "ConfigMap"
    assert int(bookmarks[0]["object"]["metadata"]["resourceVersion"]) >= int(latest)
    seen = watch.Watch()
    list(seen.stream(core.list_namespaced_config_map, ns, resource_version=latest, timeout_seconds=1,
                     allow_watch_bookmarks=True))
    assert int(str(seen.resource_version)) >= int(latest)  # the client took the bookmark's version


def test_watch_from_compacted_version_is_410_gone() -> None:
    with SandboxThread(watch_window=5, workloads=False) as small:
        api = small.api_client()
        core = client.CoreV1Api(api)
        old = core.create_namespaced_config_map("default", configmap("first")).metadata.resource_version
        for i in range(10):
            core.create_namespaced_config_map("default", configmap(f"c{i}"))
        raw = Raw(small.url)
        response = raw.request("GET", "/api/v1/namespaces/default/configmaps", watch="true", resourceVersion=old)
        event = response.json()
        assert event["type"] == "ERROR"
        assert (event["object"]["kind"], event["object"]["code"], event["object"]["reason"]) == ("Status", 410,
                                                                                                 "Expired")
        with pytest.raises(ApiException) as error:
            list(watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=old,
                                      timeout_seconds=1))
        assert error.value.status == 410
        api.close()


def test_official_watch_resumes_from_its_last_resource_version(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, configmap("a"))
    watcher = watch.Watch()
    first = [e["type"] for e in watcher.stream(core.list_namespaced_config_map, ns, resource_version=start,
                                               timeout_seconds=1)]
    core.create_namespaced_config_map(ns, configmap("b"))
    again = [(e["type"], e["object"].metadata.name) for e in watcher.stream(
        core.list_namespaced_config_map, ns, resource_version=watcher.resource_version, timeout_seconds=1)]
    assert first == ["ADDED"] and again == [("ADDED", "b")]


# ----- namespaces


def test_default_namespace_exists_and_missing_namespace_is_404(raw: Raw) -> None:
    assert raw.request("GET", "/api/v1/namespaces/default").status_code == 200
    response = raw.request("POST", "/api/v1/namespaces/nowhere/configmaps", configmap("a"))
    assert response.status_code == 404 and response.json()["details"]["kind"] == "namespaces"


def test_deleting_a_namespace_deletes_its_contents(api: Any, raw: Raw, ns: str) -> None:
    client.CoreV1Api(api).create_namespaced_config_map(ns, configmap("a"))
    client.AppsV1Api(api).create_namespaced_deployment(ns, deployment("web", replicas=1))
    deleted = raw.request("DELETE", f"/api/v1/namespaces/{ns}").json()
    assert deleted["status"]["phase"] == "Terminating"
    wait_for(lambda: raw.request("GET", f"/api/v1/namespaces/{ns}").status_code == 404, what="namespace gone")
    assert raw.request("GET", f"/api/v1/namespaces/{ns}/configmaps/a").status_code == 404
    assert raw.request("GET", "/api/v1/pods", labelSelector="app=web",
                       fieldSelector=f"metadata.namespace={ns}").json()["items"] == []


# ----- CRDs


def _crd(group: str, kind: str, plural: str, scope: str = "Namespaced", status: bool = False) -> dict[str, Any]:
    version: dict[str, Any] = {"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}
    if status:
        version["subresources"] = {"status": {}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scope, "versions": [version],
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": kind + "List"}}}


def _create_widget_crd(raw: Raw) -> None:
    response = raw.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                           _crd("example.com", "Widget", "widgets", status=True))
    assert response.status_code in (201, 409)


@pytest.mark.parametrize(("group", "kind", "plural"), [
    ("gateway.networking.k8s.io", "HTTPRoute", "httproutes"),
    ("networking.istio.io", "VirtualService", "virtualservices"),
])
def test_crd_registers_a_served_resource(api: Any, raw: Raw, ns: str, group: str, kind: str, plural: str) -> None:
    ext = client.ApiextensionsV1Api(api)
    with __import__("contextlib").suppress(ApiException):
        ext.create_custom_resource_definition(_crd(group, kind, plural, status=True))
    crd = ext.read_custom_resource_definition(f"{plural}.{group}")
    assert {c.type: c.status for c in crd.status.conditions}["Established"] == "True"
    listing = raw.request("GET", f"/apis/{group}/v1").json()
    assert [r["name"] for r in listing["resources"]] == [plural, f"{plural}/status"]
    assert group in [g["name"] for g in raw.request("GET", "/apis").json()["groups"]]
    custom = client.CustomObjectsApi(api)
    body = {"apiVersion": f"{group}/v1", "kind": kind, "metadata": {"name": "route"}, "spec": {"hosts": ["a"]}}
    created = custom.create_namespaced_custom_object(group, "v1", ns, plural, body)
    assert created["metadata"]["generation"] == 1
    custom.patch_namespaced_custom_object_status(group, "v1", ns, plural, "route", {"status": {"ok": True}})
    got = custom.get_namespaced_custom_object(group, "v1", ns, plural, "route")
    assert got["status"] == {"ok": True} and got["metadata"]["generation"] == 1
    items = custom.list_namespaced_custom_object(group, "v1", ns, plural)
    assert items["kind"] == f"{kind}List" and [i["metadata"]["name"] for i in items["items"]] == ["route"]


def test_deleting_a_crd_unregisters_its_resource(raw: Raw, ns: str) -> None:
    raw.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                _crd("temp.example.com", "Gizmo", "gizmos"))
    assert raw.request("POST", f"/apis/temp.example.com/v1/namespaces/{ns}/gizmos",
                       {"metadata": {"name": "g"}}).status_code == 201
    raw.request("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.temp.example.com")
    assert raw.request("GET", f"/apis/temp.example.com/v1/namespaces/{ns}/gizmos/g").status_code == 404
    assert raw.request("GET", "/apis/temp.example.com/v1").status_code == 404


# ----- garbage collection


def _owned_configmap(name: str, owner: dict[str, Any]) -> dict[str, Any]:
    body = configmap(name)
    body["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap",
                                            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}]
    return body


def test_deleting_an_owner_deletes_its_dependents(raw: Raw, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    owner = raw.request("POST", base, configmap("owner")).json()
    raw.request("POST", base, _owned_configmap("child", owner))
    grandchild_owner = raw.request("GET", f"{base}/child").json()
    raw.request("POST", base, _owned_configmap("grandchild", grandchild_owner))
    raw.request("DELETE", f"{base}/owner")
    wait_for(lambda: raw.request("GET", f"{base}/grandchild").status_code == 404, what="cascading deletion")
    assert raw.request("GET", f"{base}/child").status_code == 404


def test_orphan_propagation_keeps_dependents_without_the_reference(raw: Raw, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    owner = raw.request("POST", base, configmap("owner")).json()
    raw.request("POST", base, _owned_configmap("child", owner))
    raw.request("DELETE", f"{base}/owner", {"propagationPolicy": "Orphan"})
    child = raw.request("GET", f"{base}/child")
    assert child.status_code == 200 and not child.json()["metadata"].get("ownerReferences")


# ----- other kinds and discovery


def test_leases_for_leader_election(api: Any, ns: str) -> None:
    coordination = client.CoordinationV1Api(api)
    lease = coordination.create_namespaced_lease(ns, {"metadata": {"name": "weir"},
                                                      "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}})
    lease.spec.holder_identity = "b"
    assert coordination.replace_namespaced_lease("weir", ns, lease).spec.holder_identity == "b"
    with pytest.raises(ApiException) as error:
        coordination.replace_namespaced_lease("weir", ns, lease)  # a competing candidate with the old version
    assert error.value.status == 409


def test_events_are_one_set_served_in_both_groups(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_event(ns, {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Deployment",
                                                                                      "name": "web"},
                                      "reason": "Promoted", "message": "done", "type": "Normal",
                                      # the client's events.k8s.io model insists on eventTime, as on a real cluster
                                      "eventTime": "2026-01-01T00:00:00.000000Z"})
    assert [e.reason for e in core.list_namespaced_event(ns, field_selector="involvedObject.name=web").items] \
        == ["Promoted"]
    events = client.EventsV1Api(api)
    events.create_namespaced_event(ns, {"metadata": {"name": "e2"}, "eventTime": "2026-01-01T00:00:00.000000Z",
                                        "reportingController": "weir", "reportingInstance": "weir-0",
                                        "regarding": {"kind": "Deployment", "name": "web"}, "note": "rolled back",
                                        "action": "Rollback", "reason": "RolledBack", "type": "Warning"})
    seen = {e.metadata.name: e for e in events.list_namespaced_event(ns).items}
    assert (seen["e1"].note, seen["e1"].regarding.name) == ("done", "web")
    old = {e.metadata.name: e for e in core.list_namespaced_event(ns).items}
    assert (old["e2"].message, old["e2"].involved_object.name, old["e2"].reporting_component) == \
        ("rolled back", "web", "weir")


def test_rbac_kinds_are_accepted_and_stored(api: Any, ns: str) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_cluster_role({"metadata": {"name": unique("weir")},
                              "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]})
    rbac.create_namespaced_role_binding(ns, {"metadata": {"name": "b"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "x"},
        "subjects": [{"kind": "ServiceAccount", "name": "weir", "namespace": ns}]})
    assert [b.metadata.name for b in rbac.list_namespaced_role_binding(ns).items] == ["b"]


def test_requests_need_no_token(sb: SandboxThread) -> None:
    assert requests.get(sb.url + "/api/v1/namespaces/default", timeout=10).status_code == 200


def test_openapi_v3_declares_server_side_field_validation(raw: Raw) -> None:
    """kubectl trusts the server to validate (and skips client-side schemas) only when PATCH takes fieldValidation."""
    index = raw.request("GET", "/openapi/v3").json()["paths"]
    document = raw.request("GET", index["apis/apps/v1"]["serverRelativeURL"]).json()
    patch = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert {"name": "fieldValidation", "in": "query"}.items() <= patch["parameters"][0].items()


def test_discovery_documents(raw: Raw) -> None:
    assert raw.request("GET", "/api").json()["versions"] == ["v1"]
    assert raw.request("GET", "/version").json()["minor"] == "32"
    groups = {g["name"] for g in raw.request("GET", "/apis").json()["groups"]}
    assert {"apps", "networking.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io", "events.k8s.io",
            "rbac.authorization.k8s.io"} <= groups
    apps = {r["name"]: r for r in raw.request("GET", "/apis/apps/v1").json()["resources"]}
    assert {"deployments", "deployments/status", "deployments/scale"} <= set(apps)
    assert apps["deployments"]["namespaced"] and "watch" in apps["deployments"]["verbs"]
    core = {r["name"] for r in raw.request("GET", "/api/v1").json()["resources"]}
    assert {"namespaces", "pods", "services", "configmaps", "secrets", "events", "serviceaccounts"} <= core


def test_secret_string_data_is_folded_into_base64_data(sandbox: Any) -> None:
    import base64

    core = client.CoreV1Api(sandbox.api_client())
    core.create_namespaced_secret("default", {"metadata": {"name": "s"}, "stringData": {"token": "abc"},
                                              "data": {"other": base64.b64encode(b"x").decode()}})
    secret = core.read_namespaced_secret("s", "default")
    assert secret.data == {"token": base64.b64encode(b"abc").decode(), "other": base64.b64encode(b"x").decode()}
    assert secret.string_data is None and secret.type == "Opaque"

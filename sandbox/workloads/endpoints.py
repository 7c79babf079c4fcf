"""The endpoints controllers: each Service with a selector gets an Endpoints object (ready and not-ready
pods, terminating ones left out) and one EndpointSlice (every selected pod with ready/serving/terminating
conditions, the way data planes drain), both kept in step with the pods."""

from __future__ import annotations

import contextlib
from typing import Any

from ..apiserver.errors import ApiError
from ..apiserver.resources import ResourceType
from ..apiserver.selectors import LabelSelector, Requirement
from ..apiserver.storage import JsonObject, Store
from .objects import condition, copy_of, owner_reference

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"


def _target_port(service_port: JsonObject, pod: JsonObject) -> int | None:
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def _ports(service: JsonObject, pod: JsonObject) -> list[JsonObject]:
    ports = []
    for service_port in service["spec"].get("ports") or []:
        port = _target_port(service_port, pod)
        if port is not None:
            entry: JsonObject = {"port": port, "protocol": service_port.get("protocol", "TCP")}
            if service_port.get("name"):
                entry["name"] = service_port["name"]
            ports.append(entry)
    return ports


def _is_ready(pod: JsonObject) -> bool:
    return (condition(pod, "Ready") or {}).get("status") == "True"


def _target_ref(pod: JsonObject) -> JsonObject:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]}


def endpoints_subsets(service: JsonObject, pods: list[JsonObject]) -> list[JsonObject]:
    subsets: dict[tuple[tuple[Any, ...], ...], JsonObject] = {}
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        ports = _ports(service, pod)
        subset = subsets.setdefault(tuple(tuple(sorted(p.items())) for p in ports), {"ports": ports})
        address = {"ip": pod["status"]["podIP"], "nodeName": pod["spec"].get("nodeName", ""),
                   "targetRef": _target_ref(pod)}
        subset.setdefault("addresses" if _is_ready(pod) else "notReadyAddresses", []).append(address)
    return list(subsets.values())


def slice_endpoints(pods: list[JsonObject]) -> list[JsonObject]:
    result = []
    for pod in pods:
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        serving = _is_ready(pod)
        result.append({"addresses": [pod["status"]["podIP"]],
                       "conditions": {"ready": serving and not terminating, "serving": serving,
                                      "terminating": terminating},
                       "nodeName": pod["spec"].get("nodeName", ""), "targetRef": _target_ref(pod)})
    return result


def _selected_pods(store: Store, service: JsonObject, selector: dict[str, Any]) -> list[JsonObject]:
    labels = LabelSelector(tuple(Requirement(k, "=", frozenset({str(v)})) for k, v in selector.items()))
    pods = store.list(store.registry.resource("", "pods"), service["metadata"]["namespace"], labels)
    return [p for p in pods if (p.get("status") or {}).get("podIP")]


def _write(store: Store, rtype: ResourceType, namespace: str, body: JsonObject, fields: tuple[str, ...]) -> None:
    """Create, or update only when one of `fields` (or the labels) changed: no churn for no change."""
    current = store.find(rtype, namespace, body["metadata"]["name"])
    if current is None:
        with contextlib.suppress(ApiError):  # the namespace is going away
            store.create(rtype, namespace, body)
        return
    if all(current.get(f) == body.get(f) for f in fields) and \
            current["metadata"].get("labels") == body["metadata"]["labels"]:
        return
    updated = copy_of(current)
    for field_name in fields:
        updated[field_name] = body[field_name]
    updated["metadata"]["labels"] = body["metadata"]["labels"]
    store.update(rtype, namespace, body["metadata"]["name"], updated, handed_over=True)


def sync_endpoints(store: Store, namespace: str, name: str) -> None:
    endpoints = store.registry.resource("", "endpoints")
    slices = store.registry.resource("discovery.k8s.io", "endpointslices")
    service = store.find(store.registry.resource("", "services"), namespace, name)
    selector = (service or {}).get("spec", {}).get("selector")
    if service is None or not selector:
        if store.find(endpoints, namespace, name) is not None:
            store.delete(endpoints, namespace, name)  # slices go with the Service (ownerReference)
        return
    pods = _selected_pods(store, service, selector)
    labels = dict(service["metadata"].get("labels") or {})
    _write(store, endpoints, namespace, {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "subsets": endpoints_subsets(service, pods)}, ("subsets",))
    slice_labels = dict(labels, **{SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY})
    ports = _ports(service, pods[0]) if pods else []
    _write(store, slices, namespace, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"{name}-{service['metadata']['uid'][:5]}", "namespace": namespace,
                     "labels": slice_labels, "ownerReferences": [owner_reference(service)]},
        "addressType": "IPv4", "endpoints": slice_endpoints(pods), "ports": ports}, ("endpoints", "ports"))

"""The endpoints controller: each Service with a selector gets an Endpoints object listing the pods it selects."""

from __future__ import annotations

import contextlib
from typing import Any

from ..apiserver.errors import ApiError
from ..apiserver.selectors import LabelSelector, Requirement
from ..apiserver.storage import JsonObject, Store
from .objects import condition, copy_of


def _target_port(service_port: JsonObject, pod: JsonObject) -> int | None:
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def sync_endpoints(store: Store, namespace: str, name: str) -> None:
    services = store.registry.resource("", "services")
    endpoints = store.registry.resource("", "endpoints")
    service = store.find(services, namespace, name)
    selector = (service or {}).get("spec", {}).get("selector")
    if service is None or not selector:
        if service is None and store.find(endpoints, namespace, name) is not None:
            store.delete(endpoints, namespace, name)
        return
    labels = LabelSelector(tuple(Requirement(k, "=", frozenset({str(v)})) for k, v in selector.items()))
    pods = [p for p in store.list(store.registry.resource("", "pods"), namespace, labels)
            if not p["metadata"].get("deletionTimestamp") and (p.get("status") or {}).get("podIP")]
    subsets: dict[tuple[tuple[Any, ...], ...], JsonObject] = {}
    for pod in pods:
        ports = []
        for service_port in service["spec"].get("ports") or []:
            port = _target_port(service_port, pod)
            if port is not None:
                entry = {"port": port, "protocol": service_port.get("protocol", "TCP")}
                if service_port.get("name"):
                    entry["name"] = service_port["name"]
                ports.append(entry)
        key = tuple(tuple(sorted(p.items())) for p in ports)
        subset = subsets.setdefault(key, {"ports": ports})
        ready = (condition(pod, "Ready") or {}).get("status") == "True"
        address = {"ip": pod["status"]["podIP"], "nodeName": pod["spec"].get("nodeName", ""),
                   "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod["metadata"]["name"],
                                 "uid": pod["metadata"]["uid"]}}
        subset.setdefault("addresses" if ready else "notReadyAddresses", []).append(address)
    body: JsonObject = {"apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": name, "namespace": namespace,
                                     "labels": dict(service["metadata"].get("labels") or {})},
                        "subsets": [s for s in subsets.values() if s.get("addresses") or s.get("notReadyAddresses")]}
    current = store.find(endpoints, namespace, name)
    if current is None:
        with contextlib.suppress(ApiError):  # the namespace is going away
            store.create(endpoints, namespace, body)
        return
    if current.get("subsets") == body["subsets"] and current["metadata"].get("labels") == body["metadata"]["labels"]:
        return
    updated = copy_of(current)
    updated["subsets"] = body["subsets"]
    updated["metadata"]["labels"] = body["metadata"]["labels"]
    store.update(endpoints, namespace, name, updated)

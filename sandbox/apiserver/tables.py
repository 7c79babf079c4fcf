"""`Table` answers for kubectl's human-readable `get` (it asks with `Accept: ...;as=Table`)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

JsonObject = dict[str, Any]


def _age(obj: JsonObject) -> str:
    created = obj["metadata"].get("creationTimestamp")
    if not created:
        return "<unknown>"
    then = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = int((datetime.datetime.now(datetime.UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * 2:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _deployment(obj: JsonObject) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}", status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0)]


def _pod(obj: JsonObject) -> list[Any]:
    status = obj.get("status") or {}
    containers = status.get("containerStatuses") or []
    total = len((obj.get("spec") or {}).get("containers") or [])
    ready = sum(1 for c in containers if c.get("ready"))
    phase = "Terminating" if obj["metadata"].get("deletionTimestamp") else status.get("phase", "Pending")
    return [f"{ready}/{total}", phase, sum(c.get("restartCount", 0) for c in containers)]


def _replicaset(obj: JsonObject) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [spec.get("replicas", 0), status.get("replicas", 0), status.get("readyReplicas", 0)]


def _service(obj: JsonObject) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), "<none>", ports or "<none>"]


def _ingress(obj: JsonObject) -> list[Any]:
    spec = obj.get("spec") or {}
    hosts = ",".join(r.get("host", "*") for r in spec.get("rules") or []) or "*"
    return [spec.get("ingressClassName", "<none>"), hosts, "", "80"]


_EXTRA: dict[str, tuple[list[tuple[str, str]], Callable[[JsonObject], list[Any]]]] = {
    "ReplicaSet": ([("Desired", "integer"), ("Current", "integer"), ("Ready", "integer")], _replicaset),
    "Service": ([("Type", "string"), ("Cluster-IP", "string"), ("External-IP", "string"), ("Port(s)", "string")],
                _service),
    "Ingress": ([("Class", "string"), ("Hosts", "string"), ("Address", "string"), ("Ports", "string")], _ingress),
    "Deployment": ([("Ready", "string"), ("Up-to-date", "integer"), ("Available", "integer")], _deployment),
    "Pod": ([("Ready", "string"), ("Status", "string"), ("Restarts", "integer")], _pod),
}


def table(kind: str, objects: list[JsonObject], resource_version: str) -> JsonObject:
    extra_columns, extra_cells = _EXTRA.get(kind, ([], lambda _: []))
    columns = [("Name", "string"), *extra_columns, ("Age", "string")]
    definitions = [{"name": name, "type": kind_, "format": "name" if name == "Name" else "", "description": name,
                    "priority": 0} for name, kind_ in columns]
    rows = [{"cells": [obj["metadata"]["name"], *extra_cells(obj), _age(obj)],
             "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj["metadata"]}} for obj in objects]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": definitions, "rows": rows}

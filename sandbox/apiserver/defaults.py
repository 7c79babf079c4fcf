"""Defaulting the real server applies on write, where controllers read the defaulted value back."""

from __future__ import annotations

import base64
import itertools
from typing import Any

from .resources import ResourceType

JsonObject = dict[str, Any]

_cluster_ips = itertools.count(1)


def _container(container: JsonObject) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = str(container.get("image", ""))
    latest = image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    container.setdefault("resources", {})


def pod_spec(spec: JsonObject) -> None:
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or []:
            if isinstance(container, dict):
                _container(container)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")


def _deployment(obj: JsonObject) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec(template.setdefault("spec", {}))


def _replicaset(obj: JsonObject) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec(template.setdefault("spec", {}))


def _service(obj: JsonObject) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName" and "clusterIP" not in spec:
        number = next(_cluster_ips)
        spec["clusterIP"] = f"10.96.{number // 250 % 250}.{number % 250 + 1}"
        spec["clusterIPs"] = [spec["clusterIP"]]
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
    obj.setdefault("status", {"loadBalancer": {}})


def _pod(obj: JsonObject) -> None:
    pod_spec(obj.setdefault("spec", {}))
    obj.setdefault("status", {"phase": "Pending"})


def _namespace(obj: JsonObject) -> None:
    obj.setdefault("spec", {"finalizers": ["kubernetes"]})
    obj.setdefault("status", {"phase": "Active"})
    labels = obj["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]


def _secret(obj: JsonObject) -> None:
    """`stringData` is write-only: the server folds it into base64 `data` (its keys win) and drops it."""
    plain = obj.pop("stringData", None) or {}
    if plain:
        data = obj.setdefault("data", {}) or {}
        obj["data"] = data
        for key, value in plain.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    obj.setdefault("type", "Opaque")


_BY_KIND = {
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("", "Service"): _service,
    ("", "Pod"): _pod,
    ("", "Namespace"): _namespace,
    ("", "Secret"): _secret,
}


def apply_defaults(rtype: ResourceType, obj: JsonObject) -> None:
    """Fill in defaults in place (the object is the emulator's own copy)."""
    defaulter = _BY_KIND.get((rtype.group, rtype.kind))
    if defaulter is not None:
        defaulter(obj)

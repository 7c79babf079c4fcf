"""Which pods a Service sends traffic to: the ready, non-terminating pods its selector matches.

Reads plain Kubernetes object dicts as the API returns them (Services, Pods).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Where the sandbox records the loopback port a pod's process really listens on (every pod runs on
# 127.0.0.1, so the containerPort from the template cannot tell them apart).
POD_PORT_ANNOTATION = "sandbox.weir.dev/port"

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    pod: str


@dataclass(frozen=True, order=True)
class ServiceKey:
    namespace: str
    name: str

    @property
    def upstream(self) -> str:
        """The nginx upstream name; also a DNS-like name people recognise in logs."""
        return f"{self.name}.{self.namespace}.svc"


def pod_port(pod: Obj) -> int | None:
    """The sandbox's port annotation, else the first declared containerPort."""
    raw = (pod.get("metadata", {}).get("annotations") or {}).get(POD_PORT_ANNOTATION)
    if raw:
        return int(raw)
    for container in pod.get("spec", {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("containerPort"):
                return int(port["containerPort"])
    return None


def pod_is_ready(pod: Obj) -> bool:
    """Ready condition true and not terminating: Kubernetes takes a pod out of its Services' ready
    endpoints as soon as it gets a deletionTimestamp, while its preStop hook still serves."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A Service selector: every key equal. An empty selector selects nothing (Services without a
    selector have manually managed endpoints, which the sandbox does not have)."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def service_endpoints(
    services: Iterable[Obj],
    pods: Iterable[Obj],
    port_of: Callable[[Obj], int | None] = pod_port,
) -> dict[ServiceKey, tuple[Endpoint, ...]]:
    """Every Service (even those with no ready pod) to its ready endpoints, sorted for stable configs."""
    ready = [(pod, endpoint) for pod in pods if (endpoint := _endpoint(pod, port_of)) is not None]
    result: dict[ServiceKey, tuple[Endpoint, ...]] = {}
    for service in services:
        meta = service.get("metadata", {})
        key = ServiceKey(meta.get("namespace", "default"), meta["name"])
        selector = (service.get("spec") or {}).get("selector") or {}
        chosen = [
            endpoint
            for pod, endpoint in ready
            if pod.get("metadata", {}).get("namespace", "default") == key.namespace
            and selector_matches(selector, pod.get("metadata", {}).get("labels") or {})
        ]
        result[key] = tuple(sorted(chosen, key=lambda e: (e.ip, e.port)))
    return result


def _endpoint(pod: Obj, port_of: Callable[[Obj], int | None]) -> Endpoint | None:
    port = port_of(pod)
    if port is None or not pod_is_ready(pod):
        return None
    ip = (pod.get("status") or {}).get("podIP") or "127.0.0.1"
    return Endpoint(ip, port, pod.get("metadata", {}).get("name", ""))

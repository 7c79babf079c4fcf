"""Istio VirtualServices as pure functions (the `istio` router's object builders)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GROUP = "networking.istio.io"
VERSION = "v1beta1"
PLURAL = "virtualservices"


def host_names(service: str, namespace: str) -> set[str]:
    """The spellings of a Service's host that Istio resolves from inside `namespace`."""
    return {
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    }


def is_destination(destination: Mapping[str, Any] | None, service: str, namespace: str) -> bool:
    return (destination or {}).get("host") in host_names(service, namespace)


def references_service(virtualservice: Mapping[str, Any], service: str, namespace: str) -> bool:
    return any(
        is_destination(target.get("destination"), service, namespace)
        for http in (virtualservice.get("spec") or {}).get("http") or []
        for target in http.get("route") or []
    )

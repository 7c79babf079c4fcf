"""Gateway API HTTPRoutes as pure functions (the `gateway` router's object builders)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GROUP = "gateway.networking.k8s.io"
VERSION = "v1"
PLURAL = "httproutes"


def is_service_ref(ref: Mapping[str, Any], service: str) -> bool:
    """A backendRef to the core Service `service` in the route's own namespace (group "" and kind
    Service are the documented defaults)."""
    return (
        ref.get("name") == service
        and (ref.get("group") or "") == ""
        and (ref.get("kind") or "Service") == "Service"
        and not ref.get("namespace")
    )


def references_service(httproute: Mapping[str, Any], service: str) -> bool:
    return any(
        is_service_ref(ref, service)
        for rule in (httproute.get("spec") or {}).get("rules") or []
        for ref in rule.get("backendRefs") or []
    )

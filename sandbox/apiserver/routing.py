"""Turning a URL path into the resource it names, the way kube-apiserver lays out its paths."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ApiError
from .resources import Registry, ResourceType


@dataclass(frozen=True)
class Target:
    rtype: ResourceType
    namespace: str | None  # None: all namespaces (lists and watches only) or a cluster-scoped kind
    name: str | None
    subresource: str | None


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def resource_target(registry: Registry, group: str, version: str, rest: list[str]) -> Target:
    """`rest` is what follows /api/v1 or /apis/<group>/<version>."""
    if len(rest) >= 3 and rest[0] == "namespaces":
        rtype = registry.lookup(group, version, rest[2])
        if rtype is not None and rtype.namespaced and len(rest) <= 5:
            return Target(rtype, rest[1], rest[3] if len(rest) > 3 else None, rest[4] if len(rest) > 4 else None)
    if not rest or len(rest) > 3:
        raise _not_found()
    rtype = registry.lookup(group, version, rest[0])
    if rtype is None:
        raise _not_found()
    name = rest[1] if len(rest) > 1 else None
    if rtype.namespaced and name is not None:
        raise _not_found()
    return Target(rtype, None, name, rest[2] if len(rest) > 2 else None)

"""Routers by name: the `router:` value of weir.dev/rollout picks one, or detection does when it is
left out. The only module of the package's surface that needs the kubernetes client.

router = make_router(spec.router or detect_router(api, namespace, name), api)
"""

from __future__ import annotations

from collections.abc import Callable

from kubernetes.client import ApiClient

from adapters.base import Router, RouterError
from adapters.detection import detect_router
from adapters.gateway import GatewayRouter
from adapters.istio import IstioRouter
from adapters.kube import ObjectCache
from adapters.nginx import NginxRouter
from adapters.service import ServiceRouter

ROUTERS: dict[str, Callable[[ApiClient, ObjectCache | None], Router]] = {
    "service": ServiceRouter,
    "nginx": NginxRouter,
    "gateway": GatewayRouter,
    "istio": IstioRouter,
}


def make_router(kind: str, api: ApiClient, cache: ObjectCache | None = None) -> Router:
    """The router called `kind` (a `router:` value of weir.dev/rollout), talking to `api` (reading from
    `cache` where it covers a kind)."""
    try:
        factory = ROUTERS[kind]
    except KeyError:
        raise RouterError(
            "router",
            f"unknown or unavailable router {kind!r}",
            f"use one of: {', '.join(sorted(ROUTERS))} (or leave `router:` out to detect it)",
        ) from None
    return factory(api, cache)


__all__ = ["ROUTERS", "detect_router", "make_router"]

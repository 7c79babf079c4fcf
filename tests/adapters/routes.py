"""Routes and user objects shared by the router tests."""

from __future__ import annotations

from typing import Any

from adapters.base import OwnerRef, Route


def web_route(namespace: str = "default", uid: str = "uid-web", ingress: str | None = "web") -> Route:
    return Route(
        namespace=namespace,
        name="web",
        primary_service="web-primary",
        canary_service="web-canary",
        owner=OwnerRef(api_version="apps/v1", kind="Deployment", name="web", uid=uid),
        primary_selector=(("app", "web-primary"),),
        canary_selector=(("app", "web"),),
        ingress=ingress,
    )


def backend(service: str, port: int = 80) -> dict[str, Any]:
    return {"service": {"name": service, "port": {"number": port}}}


def path(service: str, prefix: str = "/") -> dict[str, Any]:
    return {"path": prefix, "pathType": "Prefix", "backend": backend(service)}


def user_ingress(**spec_overrides: Any) -> dict[str, Any]:
    """Ingress `web`: host shop.example with `/` on Service web and `/admin` on Service admin."""
    spec: dict[str, Any] = {
        "ingressClassName": "nginx",
        "rules": [{"host": "shop.example", "http": {"paths": [path("web"), path("admin", "/admin")]}}],
        "tls": [{"hosts": ["shop.example"], "secretName": "shop-tls"}],
        **spec_overrides,
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "shop"}},
        "spec": spec,
    }

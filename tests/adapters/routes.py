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
        "metadata": {"name": "web", "annotations": {"team": "shop"}},
        "spec": spec,
    }


def web_deployment(container_ports: tuple[int, ...] = (8080,)) -> dict[str, Any]:
    """The user's Deployment `web` (the canary workload: its pods are labelled app=web)."""
    ports = [
        {"name": f"http-{port}" if len(container_ports) > 1 else "http", "containerPort": port}
        for port in container_ports
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1", "ports": ports}]},
            },
        },
    }


def apex_service(selector: dict[str, str] | None = None) -> dict[str, Any]:
    """The user's own Service `web`, a NodePort one to prove nodePorts are not copied."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "labels": {"team": "shop"}},
        "spec": {
            "type": "NodePort",
            "selector": selector or {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080, "protocol": "TCP"}],
        },
    }


def user_httproute(*backend_names: str) -> dict[str, Any]:
    """HTTPRoute `web` on Gateway `public`: `/` to the named Services (default: web), `/admin` to admin."""
    refs = [{"name": name, "port": 80} for name in backend_names or ("web",)]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "hostnames": ["shop.example"],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": refs},
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                    "backendRefs": [{"name": "admin", "port": 80}],
                },
            ],
        },
    }


def user_virtualservice(namespace: str, host: str = "web") -> dict[str, Any]:
    """VirtualService `web` for shop.example: `/` to Service web (spelled `host`), `/admin` to admin."""
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {
            "hosts": ["shop.example"],
            "gateways": ["public"],
            "http": [
                {
                    "name": "admin",
                    "match": [{"uri": {"prefix": "/admin"}}],
                    "route": [{"destination": {"host": "admin", "port": {"number": 80}}}],
                },
                {"name": "main", "route": [{"destination": {"host": host, "port": {"number": 80}}}]},
            ],
        },
    }

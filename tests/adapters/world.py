"""Reading the emulator's objects back in tests: what exists, and each object's resourceVersion."""

from __future__ import annotations

from typing import Any

from kubernetes.client import ApiClient

from adapters.kube import ingresses, services


def service(api: ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    return services(api).get(namespace, name)


def ingress(api: ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    return ingresses(api).get(namespace, name)


def versions(api: ApiClient, namespace: str) -> dict[str, str]:
    """kind/name -> resourceVersion of every Service and Ingress in `namespace`: equal snapshots
    mean nothing was written."""
    snapshot = {}
    for kind, resource in (("Service", services(api)), ("Ingress", ingresses(api))):
        for obj in resource.list(namespace):
            snapshot[f"{kind}/{obj['metadata']['name']}"] = obj["metadata"]["resourceVersion"]
    return snapshot

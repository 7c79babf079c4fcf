"""The emulator counts the requests it serves by client, verb and resource on GET /debug/requests."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox.apiserver import SandboxThread
from sandbox.apiserver.request_counter import RequestKind, classify

from .helpers import deployment, unique


@pytest.mark.parametrize(("method", "path", "watch", "verb", "resource"), [
    ("GET", "/apis/apps/v1/namespaces/ns/deployments/web", False, "get", "deployments"),
    ("GET", "/apis/apps/v1/namespaces/ns/deployments", False, "list", "deployments"),
    ("GET", "/apis/apps/v1/deployments", True, "watch", "deployments"),
    ("POST", "/api/v1/namespaces/ns/services", False, "create", "services"),
    ("PUT", "/apis/apps/v1/namespaces/ns/deployments/web/status", False, "update", "deployments/status"),
    ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale", False, "patch", "deployments/scale"),
    ("DELETE", "/api/v1/namespaces/ns/pods/web-1", False, "delete", "pods"),
    ("DELETE", "/api/v1/namespaces/ns/pods", False, "deletecollection", "pods"),
    ("GET", "/api/v1/namespaces/ns", False, "get", "namespaces"),
    ("GET", "/api/v1/namespaces", False, "list", "namespaces"),
    ("GET", "/apis/apps/v1", False, "get", "-"),
    ("GET", "/version", False, "get", "-"),
])
def test_requests_are_classified_by_kubernetes_verb_and_resource(
        method: str, path: str, watch: bool, verb: str, resource: str) -> None:
    assert classify(method, path, watch) == RequestKind(verb, resource)


def _counts(url: str, agent: str) -> dict[tuple[str, str], int]:
    body: dict[str, Any] = requests.get(f"{url}/debug/requests", timeout=10).json()
    return {(row["verb"], row["resource"]): row["count"] for row in body["requests"] if row["user_agent"] == agent}


def test_debug_requests_counts_each_client_by_verb_and_resource_but_not_itself() -> None:
    with SandboxThread(workloads=False) as sandbox:
        session = requests.Session()
        session.headers["User-Agent"] = "counter-test/1"
        base = f"{sandbox.url}/apis/apps/v1/namespaces/default/deployments"
        name = unique("web")
        assert _counts(sandbox.url, "counter-test/1") == {}
        assert session.post(base, json=deployment(name), timeout=10).status_code == 201
        for _ in range(3):
            assert session.get(f"{base}/{name}", timeout=10).status_code == 200
        assert session.get(base, timeout=10).status_code == 200
        patched = session.patch(f"{base}/{name}", json={"metadata": {"labels": {"x": "y"}}}, timeout=10,
                                headers={"Content-Type": "application/merge-patch+json"})
        assert patched.status_code == 200
        assert session.get(base, params={"watch": "true", "timeoutSeconds": "0.1"}, timeout=10).status_code == 200

        counts = _counts(sandbox.url, "counter-test/1")
        assert counts == {("create", "deployments"): 1, ("get", "deployments"): 3, ("list", "deployments"): 1,
                          ("patch", "deployments"): 1, ("watch", "deployments"): 1}
        assert _counts(sandbox.url, "counter-test/1") == counts  # reading the counts is not a request counted
        total = requests.get(f"{sandbox.url}/debug/requests", timeout=10).json()["total"]
        assert total == sum(counts.values()) + sum(_counts(sandbox.url, requests.utils.default_user_agent()).values())

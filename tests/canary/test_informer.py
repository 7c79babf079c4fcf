"""Informers against the sandbox API: a list then a watch into the cache, resumed from the last
resourceVersion, and a relist after 410 Gone that loses no event."""

from __future__ import annotations

import threading
from typing import Any

from kubernetes import client

from canary.informer import SERVICES, Informer
from canary.store import Store
from sandbox.apiserver import SandboxThread
from tests.e2e.harness import wait_for


def service(name: str, app: str = "web") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": app}, "ports": [{"port": 80}]}}


def run(informer: Informer) -> threading.Thread:
    thread = threading.Thread(target=informer.run, daemon=True)
    thread.start()
    return thread


def test_watch_events_reach_the_cache_and_the_handler(sandbox: SandboxThread) -> None:
    api = sandbox.api_client()
    core = client.CoreV1Api(api)
    core.create_namespaced_service("default", service("a"))
    store, seen = Store(), []
    informer = Informer(api, SERVICES, "default", store, lambda kind, obj: seen.append((kind, obj["metadata"]["name"])))
    store.register(SERVICES.key, informer.synced)
    run(informer)
    try:
        wait_for(informer.synced.is_set, 10, "first list")
        assert store.get("services", "default", "a") is not None
        core.create_namespaced_service("default", service("b"))
        core.patch_namespaced_service("a", "default", {"spec": {"selector": {"app": "other"}}})
        core.delete_namespaced_service("b", "default")
        wait_for(lambda: ("DELETED", "b") in seen, 10, "the delete")
        assert ("ADDED", "b") in seen and ("MODIFIED", "a") in seen
        assert store.get("services", "default", "a")["spec"]["selector"] == {"app": "other"}  # type: ignore[index]
        assert store.get("services", "default", "b") is None and informer.relists == 1
    finally:
        informer.stop()


def test_a_410_gone_relist_loses_no_event(sandbox: SandboxThread) -> None:
    api = sandbox.api_client()
    core = client.CoreV1Api(api)
    for name in ("kept", "changed", "removed"):
        core.create_namespaced_service("default", service(name))
    store = Store()
    first = Informer(api, SERVICES, "default", store)
    store.register(SERVICES.key, first.synced)
    run(first)
    wait_for(first.synced.is_set, 10, "first list")
    wait_for(lambda: store.get("services", "default", "removed") is not None, 10, "cache filled")
    first.stop()
    old_version = first.resource_version
    # While nobody watches: changes, then the server forgets its event log (as etcd compaction does).
    core.create_namespaced_service("default", service("added"))
    core.patch_namespaced_service("changed", "default", {"spec": {"selector": {"app": "v2"}}})
    core.delete_namespaced_service("removed", "default")
    sandbox.store.compact()
    seen: list[tuple[str, str]] = []
    second = Informer(api, SERVICES, "default", store, lambda kind, obj: seen.append((kind, obj["metadata"]["name"])))
    second.resource_version = old_version  # resume where the first left off: too old now, 410 Gone
    second.synced.set()
    run(second)
    try:
        wait_for(lambda: second.relists == 1, 10, "a relist after 410 Gone")
        assert sorted(seen) == [("ADDED", "added"), ("DELETED", "removed"), ("MODIFIED", "changed")]
        assert store.get("services", "default", "removed") is None
        assert store.get("services", "default", "changed")["spec"]["selector"] == {"app": "v2"}  # type: ignore[index]
    finally:
        second.stop()

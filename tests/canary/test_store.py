"""The controller's cache: newer versions win, a relist reports every difference, indexes follow
changes, and a kind not listed yet is unknown rather than empty."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from adapters.kube import CacheNotSynced
from adapters.nginx import INGRESS_INDEXES
from canary.store import Store


def obj(name: str, version: int, namespace: str = "ns", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": str(version)}, "spec": spec}


def synced_store(kind: str = "services") -> Store:
    store = Store()
    listed = threading.Event()
    store.register(kind, listed)
    listed.set()
    return store


def test_a_kind_not_listed_yet_is_unknown_not_empty() -> None:
    store = Store()
    listed = threading.Event()
    store.register("services", listed)
    with pytest.raises(CacheNotSynced):
        store.get("services", "ns", "web")
    listed.set()
    assert store.get("services", "ns", "web") is None


def test_an_older_version_never_replaces_a_newer_one() -> None:
    store = synced_store()
    assert store.put("services", obj("web", 7, selector="ours"))
    assert not store.put("services", obj("web", 5, selector="late watch event"))
    assert store.get("services", "ns", "web")["spec"]["selector"] == "ours"  # type: ignore[index]


def test_get_hands_out_a_private_copy() -> None:
    store = synced_store()
    store.put("services", obj("web", 1, selector={"app": "web"}))
    copy = store.get("services", "ns", "web")
    copy["spec"]["selector"]["app"] = "changed"  # type: ignore[index]
    assert store.get("services", "ns", "web")["spec"]["selector"] == {"app": "web"}  # type: ignore[index]


def test_a_relist_reports_every_difference_as_an_event() -> None:
    store = synced_store()
    store.replace("services", "ns", [obj("a", 1), obj("b", 1), obj("c", 1)])
    changes = store.replace("services", "ns", [obj("a", 1), obj("b", 4), obj("d", 5)])
    assert sorted((kind, o["metadata"]["name"]) for kind, o in changes) == [
        ("ADDED", "d"), ("DELETED", "c"), ("MODIFIED", "b")]
    assert [o["metadata"]["name"] for o in store.list("services", "ns")] == ["a", "b", "d"]


def test_a_relist_does_not_undo_a_newer_write_of_ours() -> None:
    store = synced_store()
    store.put("services", obj("a", 9, selector="written"))
    assert store.replace("services", "ns", [obj("a", 8, selector="listed")]) == []
    assert store.get("services", "ns", "a")["spec"]["selector"] == "written"  # type: ignore[index]


def test_a_deleted_object_is_not_brought_back_by_a_late_event() -> None:
    store = synced_store()
    store.put("services", obj("a", 3))
    store.forget("services", "ns", "a")
    assert not store.put("services", obj("a", 3))
    assert store.put("services", obj("a", 10))  # re-created later: a newer version


def test_indexes_follow_changes() -> None:
    store = Store(indexers={"ingresses": dict(INGRESS_INDEXES)})
    listed = threading.Event()
    store.register("ingresses", listed)
    listed.set()

    def ingress(name: str, version: int, service: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(version)},
                "spec": {"rules": [{"host": "h", "http": {"paths": [{"path": "/", "backend": {
                    "service": {"name": service, "port": {"number": 80}}}}]}}]}}

    store.put("ingresses", ingress("i", 1, "web"))
    assert [i["metadata"]["name"] for i in store.find("ingresses", "ns", "backend-service", "web")] == ["i"]
    store.put("ingresses", ingress("i", 2, "api"))
    assert store.find("ingresses", "ns", "backend-service", "web") == []
    assert len(store.find("ingresses", "ns", "backend-service", "api")) == 1
    store.forget("ingresses", "ns", "i")
    assert store.find("ingresses", "ns", "backend-service", "api") == []

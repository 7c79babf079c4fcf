"""The ReplicaSet controller: keep spec.replicas pods alive and the ReplicaSet's status true."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..apiserver.storage import JsonObject, Store
from .objects import controller_uid, copy_of, is_active, owner_reference, pod_ready_since, write_status


def _pod_from_template(rs: JsonObject) -> JsonObject:
    template = copy_of(rs["spec"].get("template") or {})
    metadata = template.get("metadata") or {}
    spec = template.get("spec") or {}
    spec.setdefault("nodeName", "weir-sandbox")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": rs["metadata"]["name"] + "-",
            "labels": metadata.get("labels") or {},
            "annotations": metadata.get("annotations") or {},
            "ownerReferences": [owner_reference(rs)],
        },
        "spec": spec,
    }


def _deletion_rank(pod: JsonObject) -> tuple[int, int, str]:
    """Delete pods that serve least first: not running, then not ready, then the newest."""
    running = (pod.get("status") or {}).get("phase") == "Running"
    ready = pod_ready_since(pod) is not None
    created = pod["metadata"].get("creationTimestamp", "")
    return (int(running), int(ready), "".join(chr(255 - ord(c)) for c in created))


ReadyClock = Callable[[JsonObject], float | None]


def sync_replicaset(store: Store, namespace: str, name: str, ready_since: ReadyClock = pod_ready_since) -> float | None:
    """Returns seconds until the status needs another look (minReadySeconds), or None."""
    replicasets = store.registry.resource("apps", "replicasets")
    pods_type = store.registry.resource("", "pods")
    rs = store.find(replicasets, namespace, name)
    if rs is None:
        return None
    uid = rs["metadata"]["uid"]
    pods = [p for p in store.owned_by(pods_type, uid) if controller_uid(p) == uid]
    active = [p for p in pods if is_active(p)]
    if not rs["metadata"].get("deletionTimestamp"):
        wanted = int(rs["spec"].get("replicas", 1))
        if len(active) < wanted:
            for _ in range(wanted - len(active)):
                active.append(store.create(pods_type, namespace, _pod_from_template(rs)))
        elif len(active) > wanted:
            doomed = sorted(active, key=_deletion_rank)[: len(active) - wanted]
            for pod in doomed:
                store.delete(pods_type, namespace, pod["metadata"]["name"])
            names = {p["metadata"]["name"] for p in doomed}
            active = [p for p in active if p["metadata"]["name"] not in names]
    min_ready = int(rs["spec"].get("minReadySeconds") or 0)
    moment = time.time()
    ready = available = 0
    recheck: float | None = None
    for pod in active:
        since = ready_since(pod)
        if since is None:
            continue
        ready += 1
        waited = moment - since
        if waited >= min_ready:
            available += 1
        else:
            remaining = min_ready - waited
            recheck = remaining if recheck is None else min(recheck, remaining)
    status: dict[str, Any] = {"replicas": len(active), "fullyLabeledReplicas": len(active),
                              "readyReplicas": ready, "availableReplicas": available,
                              "observedGeneration": rs["metadata"].get("generation", 1)}
    status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
    current = store.find(replicasets, namespace, name)
    if current is not None:
        write_status(store, replicasets, current, status)
    return None if recheck is None else recheck + 0.05

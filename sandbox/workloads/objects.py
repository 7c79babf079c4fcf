"""Small readers and writers of object fields the workload controllers share."""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping
from typing import Any

from ..apiserver.resources import ResourceType
from ..apiserver.storage import JsonObject, Store, now_timestamp


def parse_time(value: str | None) -> float:
    if not value:
        return 0.0
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC).timestamp()


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_reference(owner: Mapping[str, Any]) -> JsonObject:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def condition(obj: Mapping[str, Any], kind: str) -> JsonObject | None:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return None


def pod_ready_since(pod: Mapping[str, Any]) -> float | None:
    """When the pod last became Ready, or None if it is not Ready (or is terminating)."""
    if pod["metadata"].get("deletionTimestamp"):
        return None
    ready = condition(pod, "Ready")
    if ready is None or ready.get("status") != "True":
        return None
    return parse_time(ready.get("lastTransitionTime"))


def is_active(pod: Mapping[str, Any]) -> bool:
    """Counted by its ReplicaSet: not terminating and not finished."""
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def write_status(store: Store, rtype: ResourceType, obj: Mapping[str, Any], status: JsonObject) -> JsonObject:
    """Replace the status through `/status` (a no-op write stores nothing)."""
    new = dict(obj)
    new["status"] = status
    meta = obj["metadata"]
    return store.update(rtype, meta.get("namespace", ""), meta["name"], new, subresource="status", handed_over=True)


def write_object(store: Store, rtype: ResourceType, new: JsonObject) -> JsonObject:
    """Write a controller's own fresh copy (see copy_of), which the store may keep as it is."""
    meta = new["metadata"]
    return store.update(rtype, meta.get("namespace", ""), meta["name"], new, handed_over=True)


def copy_of(obj: Mapping[str, Any]) -> JsonObject:
    return copy.deepcopy(dict(obj))


def now() -> str:
    return now_timestamp()

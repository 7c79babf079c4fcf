"""Garbage collection by ownerReference, and the namespace controller's clean-up, over the store's API.

Background propagation: once an owner is gone, every dependent whose owners are all gone is deleted
(and its own dependents after it). `propagationPolicy: Orphan` strips the reference instead.
"""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .storage import Store

JsonObject = dict[str, Any]
NAMESPACE_POLL_SECONDS = 0.05


def orphan(store: Store, owner_uid: str) -> None:
    for rtype, obj in store.dependents_of(owner_uid):
        meta = obj["metadata"]
        new = copy.deepcopy(obj)
        refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != owner_uid]
        if refs:
            new["metadata"]["ownerReferences"] = refs
        else:
            del new["metadata"]["ownerReferences"]
        store.update(rtype, meta.get("namespace", ""), meta["name"], new, handed_over=True)


def _owner_exists(store: Store, ref: JsonObject, namespace: str) -> bool:
    rtype = store.registry.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
    if rtype is None:
        return False
    obj = store.find(rtype, namespace, ref.get("name", ""))
    return obj is not None and obj["metadata"]["uid"] == ref.get("uid")


def collect(store: Store, owner_uid: str, namespace: str | None) -> None:
    for rtype, obj in store.dependents_of(owner_uid):
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        if namespace and ns != namespace:
            continue  # namespaced owners own only what is in their namespace
        live = [r for r in meta.get("ownerReferences") or []
                if r.get("uid") != owner_uid and _owner_exists(store, r, ns)]
        if not live and store.find(rtype, ns, meta["name"]) is obj:
            store.delete(rtype, ns, meta["name"])


def collect_soon(store: Store, owner_uid: str, namespace: str | None) -> None:
    """Like the real GC, dependents go shortly after their owner, not inside the owner's DELETE."""
    try:
        asyncio.get_running_loop().call_soon(collect, store, owner_uid, namespace)
    except RuntimeError:
        collect(store, owner_uid, namespace)


async def empty_namespace(store: Store, name: str) -> None:
    """Delete everything in the namespace, wait until all of it is gone (pods terminate), then the namespace."""
    while True:
        left = 0
        for rtype in store.kinds():
            if not rtype.namespaced:
                continue
            for obj in store.list(rtype, name):
                left += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    store.delete(rtype, name, obj["metadata"]["name"])
        if not left:
            break
        await asyncio.sleep(NAMESPACE_POLL_SECONDS)
    store.finish_namespace(name)

"""The controller's cache of cluster objects: plain dicts fed by informers (list + watch) and by the
responses of its own writes, indexed by namespace and by whatever the readers look things up by.

Reads of a kind that is watched but not listed yet raise `CacheNotSynced` (an "unknown" observation,
never "empty"). Objects handed out by `get` are private copies; `list` and `find` hand out the cached
dicts themselves, which callers must not change.

Newer wins: an object is replaced only by one with a resourceVersion at least as new, so a watch event
that arrives after the response of Weir's own write cannot put the older version back. (Versions are
compared as numbers when they are: etcd's are. The API conventions call them opaque, so anything else
is taken in arrival order.)
"""

from __future__ import annotations

import builtins
import copy
import threading
from collections.abc import Callable, Iterable
from typing import Any

from adapters.kube import CacheNotSynced

Obj = dict[str, Any]
Indexer = Callable[[Obj], Iterable[str]]
ObjKey = tuple[str, str]  # (namespace, name)


def _version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def at_least_as_new(candidate: str, current: str) -> bool:
    if not current or not candidate:
        return True
    try:
        return int(candidate) >= int(current)
    except ValueError:
        return True


def _key(obj: Obj) -> ObjKey:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class _Kind:
    def __init__(self, indexers: dict[str, Indexer]) -> None:
        self.objects: dict[ObjKey, Obj] = {}
        self.by_namespace: dict[str, dict[str, Obj]] = {}
        self.indexers = indexers
        self.indexes: dict[str, dict[tuple[str, str], set[str]]] = {name: {} for name in indexers}
        self.gone: dict[ObjKey, str] = {}  # deleted by us: the last version seen (late events are older)
        self.synced: list[threading.Event] = []

    def is_synced(self) -> bool:
        return bool(self.synced) and all(event.is_set() for event in self.synced)

    def add(self, key: ObjKey, obj: Obj) -> None:
        self.remove(key)
        self.objects[key] = obj
        self.by_namespace.setdefault(key[0], {})[key[1]] = obj
        for name, indexer in self.indexers.items():
            for value in indexer(obj):
                self.indexes[name].setdefault((key[0], value), set()).add(key[1])

    def remove(self, key: ObjKey) -> Obj | None:
        old = self.objects.pop(key, None)
        if old is None:
            return None
        self.by_namespace.get(key[0], {}).pop(key[1], None)
        for name, indexer in self.indexers.items():
            for value in indexer(old):
                names = self.indexes[name].get((key[0], value))
                if names is not None:
                    names.discard(key[1])
                    if not names:
                        del self.indexes[name][(key[0], value)]
        return old


class Store:
    def __init__(self, indexers: dict[str, dict[str, Indexer]] | None = None) -> None:
        self._lock = threading.RLock()
        self._indexers = indexers or {}
        self._kinds: dict[str, _Kind] = {}

    def _kind(self, kind: str) -> _Kind:
        found = self._kinds.get(kind)
        if found is None:
            found = self._kinds[kind] = _Kind(dict(self._indexers.get(kind, {})))
        return found

    # --- registration -----------------------------------------------------------------------------

    def register(self, kind: str, synced: threading.Event) -> None:
        """An informer will feed `kind`; reads of it wait for every registered informer's first list."""
        with self._lock:
            self._kind(kind).synced.append(synced)

    def covers(self, kind: str) -> bool:
        with self._lock:
            found = self._kinds.get(kind)
            return found is not None and bool(found.synced)

    def synced(self) -> bool:
        with self._lock:
            return all(kind.is_synced() for kind in self._kinds.values() if kind.synced)

    # --- reads --------------------------------------------------------------------------------------

    def _ready(self, kind: str) -> _Kind:
        found = self._kinds.get(kind)
        if found is None or not found.is_synced():
            raise CacheNotSynced(kind)
        return found

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        with self._lock:
            obj = self._ready(kind).objects.get((namespace, name))
            return None if obj is None else copy.deepcopy(obj)

    def peek(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The cached object itself (read-only)."""
        with self._lock:
            return self._ready(kind).objects.get((namespace, name))

    def list(self, kind: str, namespace: str) -> builtins.list[Obj]:
        """The namespace's cached objects (read-only)."""
        with self._lock:
            return list(self._ready(kind).by_namespace.get(namespace, {}).values())

    def find(self, kind: str, namespace: str, index: str, value: str) -> builtins.list[Obj]:
        """The namespace's cached objects whose `index` yields `value` (read-only)."""
        with self._lock:
            found = self._ready(kind)
            names = found.indexes[index].get((namespace, value), set())
            return [found.objects[(namespace, name)] for name in sorted(names)]

    def has_index(self, kind: str, index: str) -> bool:
        return index in self._indexers.get(kind, {})

    def count(self, kind: str) -> int:
        with self._lock:
            found = self._kinds.get(kind)
            return 0 if found is None else len(found.objects)

    # --- writes (from informers, and from the responses of our own writes) ---------------------------

    def put(self, kind: str, obj: Obj) -> bool:
        """Store `obj` unless a newer version is already there; True if stored."""
        key = _key(obj)
        version = _version(obj)
        with self._lock:
            found = self._kind(kind)
            current = found.objects.get(key)
            if current is not None and not at_least_as_new(version, _version(current)):
                return False
            tombstone = found.gone.get(key)
            if tombstone is not None:
                if not at_least_as_new(version, tombstone) or version == tombstone:
                    return False
                del found.gone[key]
            found.add(key, obj)
            return True

    def delete(self, kind: str, obj: Obj) -> None:
        key = _key(obj)
        with self._lock:
            found = self._kind(kind)
            old = found.remove(key)
            version = _version(obj) or (_version(old) if old is not None else "")
            if version:
                found.gone[key] = version

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Our delete succeeded: drop it, and ignore late events about the version we knew."""
        with self._lock:
            found = self._kind(kind)
            old = found.remove((namespace, name))
            if old is not None:
                found.gone[(namespace, name)] = _version(old)

    def replace(self, kind: str, namespace: str | None, items: Iterable[Obj]) -> builtins.list[tuple[str, Obj]]:
        """A fresh list of `kind` in `namespace` (None: all): becomes the cache's content for that scope.
        Returns the differences as events (ADDED / MODIFIED / DELETED), so a relist loses no change."""
        listed = {_key(item): item for item in items}
        changes: builtins.list[tuple[str, Obj]] = []
        with self._lock:
            found = self._kind(kind)
            in_scope = [key for key in found.objects if namespace is None or key[0] == namespace]
            for key in in_scope:
                if key not in listed:
                    changes.append(("DELETED", found.objects[key]))
                    found.remove(key)
            for key, item in listed.items():
                current = found.objects.get(key)
                if current is None:
                    changes.append(("ADDED", item))
                elif _version(current) == _version(item) or not at_least_as_new(_version(item), _version(current)):
                    continue  # unchanged, or a write of ours already stored a newer version
                else:
                    changes.append(("MODIFIED", item))
                found.add(key, item)
            found.gone = {k: v for k, v in found.gone.items() if k not in listed}
        return changes

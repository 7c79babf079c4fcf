"""The object store: one global resourceVersion counter (as etcd has), a bounded event log for watches,
metadata bookkeeping, finalizers, graceful deletion hand-off and ownerReference garbage collection.

All methods run on the emulator's event loop thread; stored objects are never mutated in place (every
write stores a new dict), so readers may hold on to what they got.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import datetime
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import crds, gc
from .changes import Watcher, WatchEvent
from .conversion import to_storage
from .defaults import apply_defaults
from .errors import ApiError, already_exists, bad_request, conflict, forbidden, gone, not_found
from .resources import Registry, ResourceType
from .selectors import FieldSelector, LabelSelector
from .validation import validate, validate_update

JsonObject = dict[str, Any]
ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds
Listener = Callable[["WatchEvent"], None]

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_IMMUTABLE_METADATA = ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp",
                       "deletionGracePeriodSeconds", "generation")


def now_timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(length))


def _spec_part(obj: JsonObject) -> JsonObject:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _drop_nulls(value: Any) -> None:
    """Built-in kinds decode into typed structs on the real server, so `null` fields (kubectl sends
    `creationTimestamp: null` in templates) vanish instead of being stored."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for item in value.values():
            _drop_nulls(item)
    elif isinstance(value, list):
        for item in value:
            _drop_nulls(item)


def _keep_cluster_ip(current: JsonObject, new: JsonObject) -> None:
    """A Service keeps the address it was given (the real server refuses to change it)."""
    spec, old = new.setdefault("spec", {}), current.get("spec") or {}
    for field_name in ("clusterIP", "clusterIPs"):
        if field_name in old and field_name not in spec:
            spec[field_name] = old[field_name]


@dataclass
class Store:
    registry: Registry = field(default_factory=Registry.with_builtins)
    watch_window: int = 10_000
    _objects: dict[tuple[str, str], dict[ObjectKey, JsonObject]] = field(default_factory=dict)
    _revision: int = 1
    _log: deque[WatchEvent] = field(default_factory=deque)
    _compacted: int = 0  # events up to this resourceVersion may have left the log
    _watchers: dict[tuple[str, str], set[Watcher]] = field(default_factory=dict)
    _listeners: list[Listener] = field(default_factory=list)
    _graceful: set[tuple[str, str]] = field(default_factory=set)  # store keys handed to a terminator
    _terminating: set[tuple[tuple[str, str], ObjectKey]] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # owner uid -> (store key, object key) of its dependents: controllers and the GC find children without scans
    _names: dict[tuple[tuple[str, str], str], set[str]] = field(default_factory=dict)  # (store key, ns) -> names
    _owned: dict[str, set[tuple[tuple[str, str], ObjectKey]]] = field(default_factory=dict)
    # (store key, ns, label key, label value) -> names: a selector list is not a scan of the namespace
    _labeled: dict[tuple[tuple[str, str], str, str, str], set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        namespaces = self.registry.resource("", "namespaces")
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create(namespaces, "", {"metadata": {"name": name}})

    # ----- reading
    @property
    def resource_version(self) -> int:
        return self._revision

    def get(self, rtype: ResourceType, namespace: str, name: str) -> JsonObject:
        obj = self._objects.get(rtype.store_key, {}).get((namespace if rtype.namespaced else "", name))
        if obj is None:
            raise not_found(rtype.plural, rtype.group, name)
        return obj

    def find(self, rtype: ResourceType, namespace: str, name: str) -> JsonObject | None:
        return self._objects.get(rtype.store_key, {}).get((namespace if rtype.namespaced else "", name))

    def list(self, rtype: ResourceType, namespace: str | None = None, labels: LabelSelector | None = None,
             fields: FieldSelector | None = None) -> list[JsonObject]:
        """Objects sorted by namespace/name (etcd key order), filtered by namespace and selectors."""
        bucket = self._objects.get(rtype.store_key, {})
        name = fields.exact_name() if fields else None
        if name is not None and namespace is not None:
            candidates: Iterable[tuple[ObjectKey, JsonObject]] = (
                [((namespace, name), bucket[(namespace, name)])] if (namespace, name) in bucket else [])
        elif namespace is not None:  # only this namespace's objects, from the index
            scope = namespace if rtype.namespaced else ""
            pinned = [self._labeled.get((rtype.store_key, scope, r.key, next(iter(r.values))), set())
                      for r in (labels.requirements if labels else ())
                      if r.operator in ("=", "in") and len(r.values) == 1]
            names = sorted(min(pinned, key=len) if pinned else self._names.get((rtype.store_key, scope), ()))
            candidates = [((namespace, n), bucket[(namespace if rtype.namespaced else "", n)]) for n in names]
        else:
            candidates = sorted(bucket.items())
        return [
            obj for (ns, _), obj in candidates
            if (namespace is None or ns == namespace)
            and (labels is None or labels.matches(obj["metadata"].get("labels")))
            and (fields is None or fields.matches(obj))
        ]

    def owned_by(self, rtype: ResourceType, owner_uid: str) -> builtins.list[JsonObject]:
        """Objects of `rtype` that name `owner_uid` in their ownerReferences, sorted by namespace/name."""
        bucket = self._objects.get(rtype.store_key, {})
        keys = sorted(k for store_key, k in self._owned.get(owner_uid, ()) if store_key == rtype.store_key)
        return [bucket[k] for k in keys if k in bucket]

    def _object_key(self, rtype: ResourceType, obj: JsonObject) -> ObjectKey:
        return (obj["metadata"].get("namespace", "") if rtype.namespaced else "", obj["metadata"]["name"])

    def _put(self, rtype: ResourceType, obj: JsonObject, previous: JsonObject | None) -> None:
        key = self._object_key(rtype, obj)
        self._objects.setdefault(rtype.store_key, {})[key] = obj
        self._names.setdefault((rtype.store_key, key[0]), set()).add(key[1])
        labels = obj["metadata"].get("labels") or {}
        old_labels = (previous["metadata"].get("labels") or {}) if previous else {}
        if labels != old_labels:
            self._index_labels(rtype, key, old_labels, add=False)
            self._index_labels(rtype, key, labels, add=True)
        refs = obj["metadata"].get("ownerReferences")
        old_refs = previous["metadata"].get("ownerReferences") if previous else None
        if refs != old_refs:
            self._index_owners(rtype, key, old_refs, add=False)
            self._index_owners(rtype, key, refs, add=True)

    def _drop(self, rtype: ResourceType, obj: JsonObject) -> None:
        key = self._object_key(rtype, obj)
        del self._objects[rtype.store_key][key]
        names = self._names.get((rtype.store_key, key[0]))
        if names is not None:
            names.discard(key[1])
            if not names:
                del self._names[(rtype.store_key, key[0])]
        self._index_owners(rtype, key, obj["metadata"].get("ownerReferences"), add=False)
        self._index_labels(rtype, key, obj["metadata"].get("labels") or {}, add=False)

    def _index_labels(self, rtype: ResourceType, key: ObjectKey, labels: Any, add: bool) -> None:
        for label, value in labels.items():
            entry = (rtype.store_key, key[0], str(label), str(value))
            if add:
                self._labeled.setdefault(entry, set()).add(key[1])
            elif entry in self._labeled:
                self._labeled[entry].discard(key[1])
                if not self._labeled[entry]:
                    del self._labeled[entry]

    def _index_owners(self, rtype: ResourceType, key: ObjectKey, refs: Any, add: bool) -> None:
        for ref in refs or []:
            uid = str(ref.get("uid", ""))
            if add:
                self._owned.setdefault(uid, set()).add((rtype.store_key, key))
            elif uid in self._owned:
                self._owned[uid].discard((rtype.store_key, key))
                if not self._owned[uid]:
                    del self._owned[uid]

    # ----- subscribing
    def subscribe(self, listener: Listener) -> None:
        """In-process controllers: called synchronously for every change, in order."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def open_watch(self, rtype: ResourceType, namespace: str | None, since: int | None,
                   labels: LabelSelector, fields: FieldSelector) -> Watcher:
        """Start a watch: replay from `since` (410 Gone if compacted away) or list as ADDED when unset/0."""
        watcher = Watcher(rtype.store_key, namespace, labels, fields)
        if not since:
            for obj in self.list(rtype, namespace, labels, fields):
                ns = obj["metadata"].get("namespace", "")
                watcher.queue.put_nowait(WatchEvent(int(obj["metadata"]["resourceVersion"]), "ADDED",
                                                    rtype.store_key, ns, obj))
        else:
            if since < self._compacted:
                raise gone(f"too old resource version: {since} ({self._compacted})")
            backlog = []
            for event in reversed(self._log):
                if event.resource_version <= since:
                    break
                backlog.append(event)
            for event in reversed(backlog):
                watcher.offer(event)
        self._watchers.setdefault(rtype.store_key, set()).add(watcher)
        return watcher

    def close_watch(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.store_key, set()).discard(watcher)

    def _emit(self, event_type: str, rtype: ResourceType, obj: JsonObject, old: JsonObject | None) -> None:
        event = WatchEvent(self._revision, event_type, rtype.store_key, obj["metadata"].get("namespace", ""), obj, old)
        self._log.append(event)
        while len(self._log) > self.watch_window:
            self._compacted = self._log.popleft().resource_version
        for watcher in list(self._watchers.get(rtype.store_key, ())):
            watcher.offer(event)
        for listener in list(self._listeners):
            listener(event)

    def compact(self) -> None:
        """Drop the whole event log (tests use it to force 410 Gone)."""
        if self._log:
            self._compacted = self._log[-1].resource_version
        self._log.clear()

    def _bump(self) -> str:
        self._revision += 1
        return str(self._revision)

    # ----- writing
    def _check_namespace(self, rtype: ResourceType, namespace: str) -> None:
        if not rtype.namespaced:
            return
        if not namespace:
            raise bad_request("the namespace of the object does not match the namespace on the request")
        ns = self._objects.get(("", "namespaces"), {}).get(("", namespace))
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise forbidden(f'{rtype.kind.lower()}s "{namespace}" is forbidden: unable to create new content in '
                            f"namespace {namespace} because it is being terminated")

    def _check_body(self, rtype: ResourceType, obj: Any, namespace: str) -> JsonObject:
        if not isinstance(obj, dict):
            raise bad_request("the request body must be a JSON object")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if kind is not None and kind != rtype.kind:
            raise bad_request(f"the kind {kind!r} of the body does not match the resource {rtype.plural!r} "
                              f"(expected kind {rtype.kind!r})")
        if api_version is not None and api_version != rtype.api_version:
            group = api_version.rpartition("/")[0]
            if group != rtype.group:
                raise bad_request(f"the API version {api_version!r} of the body does not match the request's "
                                  f"{rtype.api_version!r}")
        metadata = obj.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise bad_request("metadata must be an object")
        body_ns = metadata.get("namespace")
        if rtype.namespaced and body_ns and body_ns != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                              "request")
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        if not rtype.custom:
            _drop_nulls(obj)
        return to_storage(rtype, obj)

    def create(self, rtype: ResourceType, namespace: str, obj: Any, *, dry_run: bool = False) -> JsonObject:
        obj = self._check_body(rtype, copy.deepcopy(obj), namespace)
        metadata = obj["metadata"]
        if not metadata.get("name"):
            prefix = metadata.get("generateName")
            if not prefix:
                raise ApiError(422, "Invalid", f"{rtype.kind} \"\" is invalid: metadata.name: Required value: name "
                               "or generateName is required",
                               {"kind": rtype.kind, "causes": [{"reason": "FieldValueRequired",
                                                                "message": "Required value: name or generateName "
                                                                "is required", "field": "metadata.name"}]})
            metadata["name"] = prefix + random_suffix()
        self._check_namespace(rtype, namespace)
        if rtype.namespaced:
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        for field_name in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            metadata.pop(field_name, None)
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = now_timestamp()
        metadata["generation"] = 1
        if rtype.has_status:
            obj.pop("status", None)  # status is the controllers' to write, through /status
        apply_defaults(rtype, obj)
        validate(rtype, obj)
        if rtype.kind == "CustomResourceDefinition":
            new_types = crds.resource_types(obj)
            obj["status"] = crds.established_status(obj, metadata["creationTimestamp"])
        object_key = (namespace if rtype.namespaced else "", metadata["name"])
        bucket = self._objects.setdefault(rtype.store_key, {})
        if object_key in bucket:
            raise already_exists(rtype.plural, rtype.group, metadata["name"])
        if dry_run:
            metadata["resourceVersion"] = str(self._revision)
            return obj
        metadata["resourceVersion"] = self._bump()
        self._put(rtype, obj, None)
        if rtype.kind == "CustomResourceDefinition":
            self.registry.add_all(new_types)
        self._emit("ADDED", rtype, obj, None)
        return obj

    def update(self, rtype: ResourceType, namespace: str, name: str, obj: Any, *, subresource: str | None = None,
               dry_run: bool = False, handed_over: bool = False) -> JsonObject:
        """PUT semantics: optimistic concurrency on metadata.resourceVersion, status only through `/status`.

        `handed_over=True`: the caller built `obj` for this call and will not touch it again (no defensive copy).
        """
        current = self.get(rtype, namespace, name)
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
            raise bad_request("the request body must be a JSON object with object metadata")
        metadata = obj.get("metadata", {})
        if metadata.get("name", name) != name:
            raise bad_request(f'the name of the object ({metadata.get("name")}) does not match the name on the URL '
                              f"({name})")
        expected = metadata.get("resourceVersion")
        if expected and str(expected) != current["metadata"]["resourceVersion"]:
            raise conflict(rtype.plural, rtype.group, name)
        if subresource == "status":
            new = dict(current)
            status = obj.get("status", {})
            new["status"] = status if handed_over else copy.deepcopy(status)
            new["metadata"] = dict(current["metadata"])
        else:
            new = self._check_body(rtype, obj if handed_over else copy.deepcopy(obj), namespace)
            metadata = new["metadata"]
            for key in _IMMUTABLE_METADATA:
                if key in current["metadata"]:
                    metadata[key] = current["metadata"][key]
                else:
                    metadata.pop(key, None)
            if rtype.kind == "Namespace" or rtype.has_status:
                if "status" in current:
                    new["status"] = current["status"]
                else:
                    new.pop("status", None)
            if rtype.kind == "Service" and not rtype.group:
                _keep_cluster_ip(current, new)
            apply_defaults(rtype, new)
            validate(rtype, new)
            validate_update(rtype, current, new)
            if rtype.kind == "CustomResourceDefinition":
                crds.resource_types(new)
        new["metadata"].pop("resourceVersion", None)
        old_meta = {k: v for k, v in current["metadata"].items() if k != "resourceVersion"}
        if new["metadata"] == old_meta and _spec_part(new) == _spec_part(current) and \
                new.get("status") == current.get("status"):
            return current  # a no-op write: no new resourceVersion, no event, as etcd-backed storage does
        if _spec_part(new) != _spec_part(current):
            new["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        if dry_run:
            new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return new
        new["metadata"]["resourceVersion"] = self._bump()
        self._put(rtype, new, current)
        if rtype.kind == "CustomResourceDefinition":
            self.registry.add_all(crds.resource_types(new))
        self._emit("MODIFIED", rtype, new, current)
        self._maybe_finish_deletion(rtype, new)
        return new

    # ----- deleting
    def handle_termination(self, rtype: ResourceType) -> None:
        """Deleting objects of this kind waits for `finish_termination` (the pod runtime's job)."""
        self._graceful.add(rtype.store_key)

    def delete(self, rtype: ResourceType, namespace: str, name: str, *, grace_seconds: int | None = None,
               propagation: str | None = None, uid: str | None = None, resource_version: str | None = None,
               dry_run: bool = False) -> tuple[JsonObject, bool]:
        """Delete or start deleting; returns (object, removed_now)."""
        current = self.get(rtype, namespace, name)
        meta = current["metadata"]
        if (uid and uid != meta["uid"]) or (resource_version and resource_version != meta["resourceVersion"]):
            raise conflict(rtype.plural, rtype.group, name)
        if dry_run:
            return current, True
        ns_key = namespace if rtype.namespaced else ""
        graceful = rtype.store_key in self._graceful and grace_seconds != 0
        if propagation == "Orphan":
            gc.orphan(self, meta["uid"])
        if rtype.kind == "Namespace":
            return self._start_namespace_deletion(rtype, current), False
        if meta.get("finalizers") or graceful:
            if meta.get("deletionTimestamp"):
                return current, False
            new = dict(current)
            new["metadata"] = dict(meta, deletionTimestamp=now_timestamp(), resourceVersion=self._bump())
            if graceful:
                spec_grace = (current.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                new["metadata"]["deletionGracePeriodSeconds"] = spec_grace if grace_seconds is None else grace_seconds
                self._terminating.add((rtype.store_key, (ns_key, name)))
            self._put(rtype, new, current)
            self._emit("MODIFIED", rtype, new, current)
            return new, False
        return self._remove(rtype, current), True

    def finish_termination(self, rtype: ResourceType, namespace: str, name: str) -> None:
        """The runtime says the pod is gone: drop it unless finalizers still hold it."""
        key = (rtype.store_key, (namespace if rtype.namespaced else "", name))
        self._terminating.discard(key)
        obj = self.find(rtype, namespace, name)
        if obj is not None:
            self._maybe_finish_deletion(rtype, obj)

    def _maybe_finish_deletion(self, rtype: ResourceType, obj: JsonObject) -> None:
        meta = obj["metadata"]
        key = (rtype.store_key, (meta.get("namespace", "") if rtype.namespaced else "", meta["name"]))
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and key not in self._terminating \
                and rtype.kind != "Namespace":
            self._remove(rtype, obj)

    def _remove(self, rtype: ResourceType, obj: JsonObject) -> JsonObject:
        meta = obj["metadata"]
        self._drop(rtype, obj)
        gone_obj = dict(obj)
        gone_obj["metadata"] = dict(meta, resourceVersion=self._bump())
        if rtype.kind == "CustomResourceDefinition":
            self._drop_custom_resources(obj)
        self._emit("DELETED", rtype, gone_obj, None)
        gc.collect_soon(self, meta["uid"], meta.get("namespace"))
        return gone_obj

    def _drop_custom_resources(self, crd: JsonObject) -> None:
        spec = crd.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        removed = self.registry.remove_group_plural(group, plural)
        if removed:
            for obj in self.list(removed[0]):
                self._remove(removed[0], obj)
            self._objects.pop(removed[0].store_key, None)

    # ----- what the garbage collector and the namespace controller (gc.py) need
    def kinds(self) -> builtins.list[ResourceType]:
        """One served type per stored resource (versions and groups sharing a store count once)."""
        return list({t.store_key: t for t in self.registry}.values())

    def dependents_of(self, owner_uid: str) -> builtins.list[tuple[ResourceType, JsonObject]]:
        """Objects naming `owner_uid` in their ownerReferences, from the owner index."""
        types = {t.store_key: t for t in self.registry}
        found = []
        for store_key, key in sorted(self._owned.get(owner_uid, ())):
            obj = self._objects.get(store_key, {}).get(key)
            if obj is not None and store_key in types:
                found.append((types[store_key], obj))
        return found

    def _start_namespace_deletion(self, rtype: ResourceType, namespace: JsonObject) -> JsonObject:
        if namespace["metadata"].get("deletionTimestamp"):
            return namespace
        new = dict(namespace)
        new["metadata"] = dict(namespace["metadata"], deletionTimestamp=now_timestamp(), resourceVersion=self._bump())
        new["status"] = {"phase": "Terminating"}
        self._put(rtype, new, namespace)
        self._emit("MODIFIED", rtype, new, namespace)
        with contextlib.suppress(RuntimeError):  # no loop: nobody to run the clean-up (tests of the bare store)
            task = asyncio.get_running_loop().create_task(gc.empty_namespace(self, new["metadata"]["name"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return new

    async def close(self) -> None:
        """Stop background clean-ups (namespaces still emptying) when the sandbox shuts down."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def finish_namespace(self, name: str) -> None:
        """The namespace is empty: remove it."""
        namespaces = self.registry.resource("", "namespaces")
        current = self.find(namespaces, "", name)
        if current is not None:
            self._remove(namespaces, current)

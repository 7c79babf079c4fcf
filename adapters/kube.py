"""Kubernetes objects as plain JSON dicts, read and written through the official sync client.

Routers copy and compare whole objects (an Ingress's rules, a Service's ports); that is simpler and
safer on the wire form (camelCase dicts) than on the generated model classes, so every read here is
converted once and every write takes a dict.
"""

from __future__ import annotations

import builtins
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, CustomObjectsApi, NetworkingV1Api
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]

# A write that lost a race (409) is recomputed from a fresh read; more attempts than this means
# someone else is rewriting the object in a loop, which the caller should hear about.
CONFLICT_ATTEMPTS = 5

# Every request gives up after this long: a hung API server must make a read `Unreadable` (and a
# reconcile fail), not block the controller forever.
REQUEST_TIMEOUT_SECONDS = 15.0


class CacheNotSynced(ApiException):
    """A watched kind has not been listed yet: what it holds is unknown (never "empty")."""

    def __init__(self, kind: str) -> None:
        super().__init__(status=503, reason=f"the controller's cache of {kind} is not synced yet")


class ObjectCache(Protocol):
    """Watch-fed copies of objects (canary.store.Store), read instead of the API where they cover a kind.
    `list` and `find` return the cached dicts themselves: read-only."""

    def covers(self, kind: str) -> bool: ...

    def get(self, kind: str, namespace: str, name: str) -> Obj | None: ...

    def list(self, kind: str, namespace: str) -> list[Obj]: ...

    def find(self, kind: str, namespace: str, index: str, value: str) -> builtins.list[Obj]: ...

    def has_index(self, kind: str, index: str) -> bool: ...

    def put(self, kind: str, obj: Obj) -> bool: ...

    def forget(self, kind: str, namespace: str, name: str) -> None: ...


@dataclass(frozen=True)
class Resource:
    """One namespaced resource type (services, ingresses, httproutes, ...) with dict in, dict out.

    With a cache that covers the kind, reads come from it (no request) and every write's response goes
    into it, so a reader sees Weir's own writes at once; a write that conflicts re-reads from the API."""

    api: ApiClient
    plural: str
    group: str = ""  # "" for core / built-in typed APIs
    version: str = "v1"
    typed: str = ""  # the typed client's method suffix, e.g. "service"; empty for custom resources
    typed_client: Callable[[ApiClient], Any] | None = None  # e.g. CoreV1Api
    cache: ObjectCache | None = None

    @property
    def kind(self) -> str:
        return self.plural if not self.group else f"{self.plural}.{self.group}"

    def _cached(self) -> ObjectCache | None:
        return self.cache if self.cache is not None and self.cache.covers(self.kind) else None

    def _call(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT_SECONDS)
        if self.typed and self.typed_client is not None:
            client = self.typed_client(self.api)
            method: Callable[..., Any] = getattr(client, f"{verb}_namespaced_{self.typed}")
            return method(*args, **kwargs)
        custom = CustomObjectsApi(self.api)
        method = getattr(custom, f"{verb}_namespaced_custom_object")
        return method(self.group, self.version, *args, **kwargs)

    def _json(self, verb: str, *args: Any) -> Any:
        """The call's answer as the server sent it (JSON), never through the client's models."""
        return json.loads(self._call(verb, *args, _preload_content=False).data)

    def get(self, namespace: str, name: str) -> Obj | None:
        cache = self._cached()
        if cache is not None:
            return cache.get(self.kind, namespace, name)
        return self.get_live(namespace, name)

    def get_live(self, namespace: str, name: str) -> Obj | None:
        try:
            if self.typed:
                return dict(self._json("read", name, namespace))
            return dict(self._json("get", namespace, self.plural, name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list(self, namespace: str) -> list[Obj]:
        """The namespace's objects (read-only: with a cache, these are the cached dicts)."""
        cache = self._cached()
        if cache is not None:
            return cache.list(self.kind, namespace)
        listed = self._json("list", namespace) if self.typed else self._json("list", namespace, self.plural)
        return [dict(item) for item in listed.get("items") or []]

    def find(self, namespace: str, index: str, value: str) -> builtins.list[Obj] | None:
        """Objects whose cache index `index` yields `value` (read-only); None without such an index."""
        cache = self._cached()
        if cache is None or not cache.has_index(self.kind, index):
            return None
        return cache.find(self.kind, namespace, index, value)

    def _stored(self, obj: Obj) -> Obj:
        if self.cache is not None:
            self.cache.put(self.kind, obj)
        return obj

    def create(self, namespace: str, body: Obj) -> Obj:
        if self.typed:
            return self._stored(dict(self._json("create", namespace, body)))
        return self._stored(dict(self._json("create", namespace, self.plural, body)))

    def replace(self, namespace: str, name: str, body: Obj) -> Obj:
        if self.typed:
            return self._stored(dict(self._json("replace", name, namespace, body)))
        return self._stored(dict(self._json("replace", namespace, self.plural, name, body)))

    def delete(self, namespace: str, name: str) -> bool:
        """Delete; False if it was already gone."""
        # The response (the object, or a Status, depending on the kind and server version) is not
        # needed; leaving it unparsed avoids depending on which one the server sends.
        try:
            if self.typed:
                self._call("delete", name, namespace, _preload_content=False)
            else:
                self._call("delete", namespace, self.plural, name, _preload_content=False)
        except ApiException as error:
            if error.status == 404:
                if self.cache is not None:
                    self.cache.forget(self.kind, namespace, name)
                return False
            raise
        if self.cache is not None:
            self.cache.forget(self.kind, namespace, name)
        return True

    def update(self, namespace: str, name: str, change: Callable[[Obj], Obj | None]) -> Obj | None:
        """Read, apply `change` to a private copy (it may mutate and return it, or return None for
        "leave it"), write only if the result differs. A conflicting write is retried on a fresh
        read from the API (the cache may lag), so `change` must depend only on the object it is given.
        Returns the object as it now stands, or None if it does not exist."""
        read = self.get
        for _ in range(CONFLICT_ATTEMPTS):
            current = read(namespace, name)
            if current is None:
                return None
            wanted = change(copy.deepcopy(current))
            if wanted is None or wanted == current:
                return current
            try:
                return self.replace(namespace, name, wanted)
            except ApiException as error:
                if error.status != 409:
                    raise
                read = self.get_live
        raise ApiException(status=409, reason=f"{self.plural} {namespace}/{name} kept changing under us")


def services(api: ApiClient, cache: ObjectCache | None = None) -> Resource:
    return Resource(api, "services", typed="service", typed_client=CoreV1Api, cache=cache)


def ingresses(api: ApiClient, cache: ObjectCache | None = None) -> Resource:
    return Resource(api, "ingresses", group="networking.k8s.io", typed="ingress", typed_client=NetworkingV1Api,
                    cache=cache)


def deployments(api: ApiClient, cache: ObjectCache | None = None) -> Resource:
    return Resource(api, "deployments", group="apps", typed="deployment", typed_client=AppsV1Api, cache=cache)


def custom(api: ApiClient, group: str, version: str, plural: str, cache: ObjectCache | None = None) -> Resource:
    return Resource(api, plural, group=group, version=version, cache=cache)

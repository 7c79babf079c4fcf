"""Kubernetes objects as plain JSON dicts, read and written through the official sync client.

Routers copy and compare whole objects (an Ingress's rules, a Service's ports); that is simpler and
safer on the wire form (camelCase dicts) than on the generated model classes, so every read here is
converted once and every write takes a dict.
"""

from __future__ import annotations

import builtins
import copy
import json
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]

# A write that lost a race (409) is recomputed from a fresh read; more attempts than this means
# someone else is rewriting the object in a loop, which the caller should hear about.
CONFLICT_ATTEMPTS = 5

# Every request gives up after this long: a hung API server must make a read `Unreadable` (and a
# reconcile fail), not block the controller forever.
REQUEST_TIMEOUT_SECONDS = 15.0


class Wire:
    """Requests sent straight through the client's connection pool (`ApiClient.call_api`, so a client's
    rate limits and retries still apply), skipping what the generated methods add to every call:
    argument validation, model serialization, and re-reading the credentials from the kubeconfig each
    time (the auth headers are kept for a minute). Dicts in, dicts out."""

    AUTH_SECONDS = 60.0

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self._auth: dict[str, str] = {}
        self._auth_at = -self.AUTH_SECONDS
        self._lock = threading.Lock()

    def _headers(self, content_type: str) -> dict[str, str]:
        with self._lock:
            if time.monotonic() - self._auth_at > self.AUTH_SECONDS:
                auth: dict[str, str] = {}
                self.api.update_params_for_auth(auth, [], ["BearerToken"], "", "GET", None)
                self._auth, self._auth_at = auth, time.monotonic()
            auth = dict(self._auth)
        return {**auth, "Accept": "application/json", "Content-Type": content_type,
                "User-Agent": str(self.api.user_agent)}

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                query: dict[str, str] | None = None) -> Any:
        """The answer's JSON; ApiException for a status outside 2xx (as the generated methods raise)."""
        url = str(self.api.configuration.host) + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        response = self.api.call_api(method, url, header_params=self._headers(content_type), body=body,
                                     _request_timeout=REQUEST_TIMEOUT_SECONDS)
        response.read()
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return json.loads(response.data) if response.data else None


_WIRES: weakref.WeakKeyDictionary[ApiClient, Wire] = weakref.WeakKeyDictionary()
_WIRES_LOCK = threading.Lock()


def wire(api: ApiClient) -> Wire:
    """The Wire of `api` (one per client, so its credentials are read once a minute, not per request)."""
    with _WIRES_LOCK:
        found = _WIRES.get(api)
        if found is None:
            found = _WIRES[api] = Wire(api)
        return found


def collection_path(group: str, version: str, plural: str, namespace: str) -> str:
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    return f"{base}/namespaces/{namespace}/{plural}"


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
    group: str = ""  # "" for the core API
    version: str = "v1"
    cache: ObjectCache | None = None

    @property
    def kind(self) -> str:
        return self.plural if not self.group else f"{self.plural}.{self.group}"

    def _cached(self) -> ObjectCache | None:
        return self.cache if self.cache is not None and self.cache.covers(self.kind) else None

    def get(self, namespace: str, name: str) -> Obj | None:
        cache = self._cached()
        if cache is not None:
            return cache.get(self.kind, namespace, name)
        return self.get_live(namespace, name)

    def _path(self, namespace: str, name: str = "") -> str:
        path = collection_path(self.group, self.version, self.plural, namespace)
        return f"{path}/{name}" if name else path

    def get_live(self, namespace: str, name: str) -> Obj | None:
        try:
            return dict(wire(self.api).request("GET", self._path(namespace, name)))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list(self, namespace: str) -> list[Obj]:
        """The namespace's objects (read-only: with a cache, these are the cached dicts)."""
        cache = self._cached()
        if cache is not None:
            return cache.list(self.kind, namespace)
        listed = wire(self.api).request("GET", self._path(namespace))
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
        return self._stored(dict(wire(self.api).request("POST", self._path(namespace), body)))

    def replace(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._stored(dict(wire(self.api).request("PUT", self._path(namespace, name), body)))

    def delete(self, namespace: str, name: str) -> bool:
        """Delete; False if it was already gone."""
        # The response (the object, or a Status, depending on the kind and server version) is not
        # needed; leaving it unparsed avoids depending on which one the server sends.
        try:
            wire(self.api).request("DELETE", self._path(namespace, name))
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
    return Resource(api, "services", cache=cache)


def ingresses(api: ApiClient, cache: ObjectCache | None = None) -> Resource:
    return Resource(api, "ingresses", group="networking.k8s.io", cache=cache)


def deployments(api: ApiClient, cache: ObjectCache | None = None) -> Resource:
    return Resource(api, "deployments", group="apps", cache=cache)


def custom(api: ApiClient, group: str, version: str, plural: str, cache: ObjectCache | None = None) -> Resource:
    return Resource(api, plural, group=group, version=version, cache=cache)

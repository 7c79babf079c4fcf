"""Kubernetes objects as plain JSON dicts, read and written through the official sync client.

Routers copy and compare whole objects (an Ingress's rules, a Service's ports); that is simpler and
safer on the wire form (camelCase dicts) than on the generated model classes, so every read here is
converted once and every write takes a dict.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, CustomObjectsApi, NetworkingV1Api
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]

# A write that lost a race (409) is recomputed from a fresh read; more attempts than this means
# someone else is rewriting the object in a loop, which the caller should hear about.
CONFLICT_ATTEMPTS = 5

# Every request gives up after this long: a hung API server must make a read `Unreadable` (and a
# reconcile fail), not block the controller forever.
REQUEST_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Resource:
    """One namespaced resource type (services, ingresses, httproutes, ...) with dict in, dict out."""

    api: ApiClient
    plural: str
    group: str = ""  # "" for core / built-in typed APIs
    version: str = "v1"
    typed: str = ""  # the typed client's method suffix, e.g. "service"; empty for custom resources
    typed_client: Callable[[ApiClient], Any] | None = None  # e.g. CoreV1Api

    def _call(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT_SECONDS)
        if self.typed and self.typed_client is not None:
            client = self.typed_client(self.api)
            method: Callable[..., Any] = getattr(client, f"{verb}_namespaced_{self.typed}")
            return method(*args, **kwargs)
        custom = CustomObjectsApi(self.api)
        method = getattr(custom, f"{verb}_namespaced_custom_object")
        return method(self.group, self.version, *args, **kwargs)

    def _plain(self, value: Any) -> Any:
        return self.api.sanitize_for_serialization(value)

    def get(self, namespace: str, name: str) -> Obj | None:
        try:
            if self.typed:
                return dict(self._plain(self._call("read", name, namespace)))
            return dict(self._call("get", namespace, self.plural, name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list(self, namespace: str) -> list[Obj]:
        if self.typed:
            listed = self._plain(self._call("list", namespace))
        else:
            listed = self._call("list", namespace, self.plural)
        return [dict(item) for item in listed.get("items") or []]

    def create(self, namespace: str, body: Obj) -> Obj:
        if self.typed:
            return dict(self._plain(self._call("create", namespace, body)))
        return dict(self._call("create", namespace, self.plural, body))

    def replace(self, namespace: str, name: str, body: Obj) -> Obj:
        if self.typed:
            return dict(self._plain(self._call("replace", name, namespace, body)))
        return dict(self._call("replace", namespace, self.plural, name, body))

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
                return False
            raise
        return True

    def update(self, namespace: str, name: str, change: Callable[[Obj], Obj | None]) -> Obj | None:
        """Read, apply `change` to a private copy (it may mutate and return it, or return None for
        "leave it"), write only if the result differs. A conflicting write is retried on a fresh
        read, so `change` must depend only on the object it is given. Returns the object as it now
        stands, or None if it does not exist."""
        for _ in range(CONFLICT_ATTEMPTS):
            current = self.get(namespace, name)
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
        raise ApiException(status=409, reason=f"{self.plural} {namespace}/{name} kept changing under us")


def services(api: ApiClient) -> Resource:
    return Resource(api, "services", typed="service", typed_client=CoreV1Api)


def ingresses(api: ApiClient) -> Resource:
    return Resource(api, "ingresses", group="networking.k8s.io", typed="ingress", typed_client=NetworkingV1Api)


def deployments(api: ApiClient) -> Resource:
    return Resource(api, "deployments", group="apps", typed="deployment", typed_client=AppsV1Api)


def custom(api: ApiClient, group: str, version: str, plural: str) -> Resource:
    return Resource(api, plural, group=group, version=version)

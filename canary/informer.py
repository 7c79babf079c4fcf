"""List + watch of one kind of object into a cache of plain dicts (DESIGN §3: observations come from
watch-fed caches, not from GETs per reconcile).

One informer per kind and scope (a namespace, or all), kept as the API server sends it (raw JSON,
never the client's generated models). A watch resumes from the last resourceVersion it saw (bookmarks
included); a 410 Gone, or any broken stream, relists, and the relist reports every difference it finds
as an event, so no change is lost across it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, CustomObjectsApi, NetworkingV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from canary.store import Obj, Store

log = logging.getLogger("weir.informer")

WATCH_TIMEOUT_SECONDS = 300  # the server ends a watch after this; it is resumed at once
RETRY_SECONDS = (0.2, 5.0)  # backoff between failed lists/watches: first, then at most


@dataclass(frozen=True)
class Kind:
    """A kind the controller reads, as the API names it."""

    plural: str
    group: str = ""
    version: str = "v1"
    label_selector: str | None = None  # narrowed to Weir's own objects where it owns them all

    @property
    def key(self) -> str:
        return self.plural if not self.group else f"{self.plural}.{self.group}"


DEPLOYMENTS = Kind("deployments", "apps")
SERVICES = Kind("services")
INGRESSES = Kind("ingresses", "networking.k8s.io")
CONFIGMAPS = Kind("configmaps", label_selector="app.kubernetes.io/managed-by=weir")
HTTPROUTES = Kind("httproutes", "gateway.networking.k8s.io")
VIRTUALSERVICES = Kind("virtualservices", "networking.istio.io", "v1beta1")

Handler = Callable[[str, Obj], None]  # (event type ADDED | MODIFIED | DELETED, object)


def lister(api: ApiClient, kind: Kind, namespace: str | None) -> Callable[..., Any]:
    """The client's list call for `kind` in `namespace` (or all namespaces); with watch=True it streams."""
    typed: dict[str, tuple[Any, str]] = {
        "deployments": (AppsV1Api(api), "deployment"),
        "services": (CoreV1Api(api), "service"),
        "configmaps": (CoreV1Api(api), "config_map"),
        "ingresses": (NetworkingV1Api(api), "ingress"),
    }
    if kind.plural in typed and kind.group in ("", "apps", "networking.k8s.io"):
        client, name = typed[kind.plural]
        if namespace:
            method = getattr(client, f"list_namespaced_{name}")
            return lambda **kw: method(namespace, **kw)
        method = getattr(client, f"list_{name}_for_all_namespaces")
        return lambda **kw: method(**kw)
    custom = CustomObjectsApi(api)
    if namespace:
        return lambda **kw: custom.list_namespaced_custom_object(kind.group, kind.version, namespace, kind.plural,
                                                                 **kw)
    return lambda **kw: custom.list_cluster_custom_object(kind.group, kind.version, kind.plural, **kw)


class Informer:
    def __init__(self, api: ApiClient, kind: Kind, namespace: str | None, store: Store,
                 on_event: Handler | None = None) -> None:
        self.kind = kind
        self.namespace = namespace
        self.store = store
        self.on_event = on_event
        self.synced = threading.Event()
        self.resource_version = ""
        self.relists = 0  # how many times it listed (1 + relists after a 410 or a broken stream)
        self._list = lister(api, kind, namespace)
        self._stop = threading.Event()
        self._stream: Any = None

    def run(self) -> None:
        """List, then watch until stopped; relist whenever the watch cannot resume."""
        failures = 0
        while not self._stop.is_set():
            try:
                if not self.resource_version:
                    self._relist()
                self._watch()
                failures = 0
            except Exception as exc:  # a broken watch must never kill the controller: resume or relist
                if self._stop.is_set():
                    return
                failures += 1
                if isinstance(exc, ApiException) and exc.status == 410:
                    self.resource_version = ""  # too old to resume from: relist
                    failures = 0
                wait = min(RETRY_SECONDS[0] * (2 ** min(failures, 6)), RETRY_SECONDS[1]) * random.uniform(0.5, 1)
                if failures <= 1:
                    log.info("watch interrupted; resuming", extra={"kind": self.kind.key, "error": str(exc)[:200]})
                self._stop.wait(0 if failures == 0 else wait)

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            # shutdown() wakes the thread blocked reading it at once (close() waits for it).
            with contextlib.suppress(Exception):  # a stream that already broke
                stream.shutdown()

    # --- list -----------------------------------------------------------------------------------------

    def _relist(self) -> None:
        kwargs: dict[str, Any] = {"_preload_content": False}
        if self.kind.label_selector:
            kwargs["label_selector"] = self.kind.label_selector
        body = json.loads(self._list(**kwargs).data)
        items = body.get("items") or []
        changes = self.store.replace(self.kind.key, self.namespace, items)
        self.resource_version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        self.relists += 1
        self.synced.set()
        for event_type, obj in changes:
            self._emit(event_type, obj)

    # --- watch ----------------------------------------------------------------------------------------

    def _watch(self) -> None:
        kwargs: dict[str, Any] = {"watch": True, "resource_version": self.resource_version,
                                  "allow_watch_bookmarks": True, "timeout_seconds": WATCH_TIMEOUT_SECONDS,
                                  "_preload_content": False}
        if self.kind.label_selector:
            kwargs["label_selector"] = self.kind.label_selector
        self._stream = self._list(**kwargs)
        try:
            for event_type, obj in _events(self._stream):
                if self._stop.is_set():
                    return
                self._handle(event_type, obj)
        finally:
            self._stream.release_conn()
            self._stream = None

    def _handle(self, event_type: str, obj: Obj) -> None:
        if event_type == "ERROR":
            code = int(obj.get("code") or 0)
            raise ApiException(status=code or 500, reason=str(obj.get("message") or "watch error")[:200])
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if event_type == "BOOKMARK":
            self.resource_version = version or self.resource_version
            return
        if event_type == "DELETED":
            self.store.delete(self.kind.key, obj)
        elif not self.store.put(self.kind.key, obj):
            self.resource_version = version or self.resource_version
            return  # older than what a write of ours already stored
        self.resource_version = version or self.resource_version
        self._emit(event_type, obj)

    def _emit(self, event_type: str, obj: Obj) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event_type, obj)
            except Exception:  # a handler's bug must not stop the watch
                log.exception("event handler failed", extra={"kind": self.kind.key})


def _events(stream: Any) -> Iterator[tuple[str, Obj]]:
    for line in iter_resp_lines(stream):
        if not line:
            continue
        event = json.loads(line)
        yield str(event.get("type")), dict(event.get("object") or {})

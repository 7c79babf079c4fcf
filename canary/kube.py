"""The controller's Kubernetes I/O: Deployments and Events as plain dicts through the official client.

Thin on purpose: no policy here. Writes that record state carry the resourceVersion they were computed
from, so a stale decision is rejected (409) instead of overwriting a newer one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from adapters.kube import CONFLICT_ATTEMPTS, ObjectCache, collection_path, wire
from canary.annotations import ALERTS, STATE
from canary.events import EventSender

Obj = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def _deployment_path(namespace: str, name: str = "") -> str:
    path = collection_path("apps", "v1", "deployments", namespace)
    return f"{path}/{name}" if name else path


class Conflict(Exception):
    """The object changed since it was read; the caller re-reads and decides again."""


DEPLOYMENTS = "deployments.apps"


class Cluster:
    """Deployments and Events. With a cache (canary.store.Store, fed by the controller's informers),
    Deployments are read from it and every write's response is stored in it, so a read after a write
    sees the write."""

    def __init__(self, api: ApiClient, component: str = "weir", cache: ObjectCache | None = None,
                 background_events: bool = False) -> None:
        self.api = api
        self.cache = cache
        self.wire = wire(api)  # plain dicts in and out, never the client's generated models
        self.component = component
        # In the controller Events go out in the background (canary.events); elsewhere (plugin, tests) at once.
        self.events = EventSender(self.send_event) if background_events else None

    # --- Deployments ---------------------------------------------------------------------------------

    def get_deployment(self, namespace: str, name: str) -> Obj | None:
        if self.cache is not None and self.cache.covers(DEPLOYMENTS):
            return self.cache.get(DEPLOYMENTS, namespace, name)
        return self.get_deployment_live(namespace, name)

    def get_deployment_live(self, namespace: str, name: str) -> Obj | None:
        try:
            return dict(self.wire.request("GET", _deployment_path(namespace, name)))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch_deployment(self, namespace: str, name: str, patch: Mapping[str, Any]) -> Obj:
        try:
            answer = self.wire.request("PATCH", _deployment_path(namespace, name), dict(patch), MERGE_PATCH)
        except ApiException as error:
            if error.status == 409:
                raise Conflict(f"deployment {namespace}/{name} changed") from error
            raise
        return self._stored(dict(answer))

    def _stored(self, deployment: Obj) -> Obj:
        if self.cache is not None:
            self.cache.put(DEPLOYMENTS, deployment)
        return deployment

    def write_annotations(self, deployment: Mapping[str, Any], changes: Mapping[str, str | None]) -> Obj:
        """Set (or, with None, remove) annotations, only if the Deployment is unchanged since it was read."""
        meta = deployment["metadata"]
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"], "annotations": dict(changes)}}
        return self.patch_deployment(meta["namespace"], meta["name"], patch)

    def keep_state_copy(self, primary: Mapping[str, Any], state_json: str) -> None:
        """Write Weir's copy of the release state onto the primary (Weir's own object, out of reach of
        `kubectl rollout undo` on the user's Deployment). Unconditional: the copy only moves forward."""
        meta = primary["metadata"]
        self.patch_deployment(meta["namespace"], meta["name"], {"metadata": {"annotations": {STATE: state_json}}})

    def record_alerts(self, namespace: str, name: str, change: Callable[[str | None], str | None]) -> None:
        """Rewrite annotation weir.dev/alerts with `change(current)`, conditional on the version read;
        a conflicting write is recomputed from a fresh read."""
        read = self.get_deployment
        for _ in range(CONFLICT_ATTEMPTS):
            deployment = read(namespace, name)
            if deployment is None:
                return
            current = (deployment["metadata"].get("annotations") or {}).get(ALERTS)
            wanted = change(current)
            if wanted == current:
                return
            try:
                self.write_annotations(deployment, {ALERTS: wanted})
                return
            except Conflict:
                read = self.get_deployment_live  # the cache may lag behind the write that beat us
                continue
        raise Conflict(f"deployment {namespace}/{name} kept changing while recording an alert")

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        self.patch_deployment(namespace, name, {"spec": {"replicas": replicas}})

    def replace_template(self, deployment: Mapping[str, Any], template: Mapping[str, Any]) -> Obj:
        """Replace the whole pod template (a merge would keep fields of the current one), only if the
        Deployment is unchanged since it was read."""
        meta = deployment["metadata"]
        patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
                 {"op": "replace", "path": "/spec/template", "value": dict(template)}]
        try:
            answer = self.wire.request("PATCH", _deployment_path(meta["namespace"], meta["name"]), patch,
                                       JSON_PATCH)
        except ApiException as error:
            if error.status in (409, 422):  # 422: the resourceVersion test failed
                raise Conflict(f"deployment {meta['namespace']}/{meta['name']} changed") from error
            raise
        return self._stored(dict(answer))

    def create_deployment(self, body: Mapping[str, Any]) -> Obj:
        namespace = body["metadata"]["namespace"]
        return self._stored(dict(self.wire.request("POST", _deployment_path(namespace), dict(body))))

    def replace_deployment(self, body: Mapping[str, Any]) -> Obj:
        meta = body["metadata"]
        try:
            answer = self.wire.request("PUT", _deployment_path(meta["namespace"], meta["name"]), dict(body))
        except ApiException as error:
            if error.status == 409:
                raise Conflict(f"deployment {meta['namespace']}/{meta['name']} changed") from error
            raise
        return self._stored(dict(answer))

    def delete_deployment(self, namespace: str, name: str) -> bool:
        try:
            self.wire.request("DELETE", _deployment_path(namespace, name), {"propagationPolicy": "Background"})
            gone = True
        except ApiException as error:
            if error.status != 404:
                raise
            gone = False
        if self.cache is not None:
            self.cache.forget(DEPLOYMENTS, namespace, name)
        return gone

    # --- Events --------------------------------------------------------------------------------------

    def emit(self, deployment: Mapping[str, Any], reason: str, message: str, warning: bool = False,
             dedupe_key: str = "", wait: bool = False) -> None:
        """An Event on the Deployment. Its name derives from `dedupe_key`, so repeating the same
        decision after a crash does not record it twice."""
        meta = deployment["metadata"]
        digest = hashlib.sha256(f"{meta['uid']}|{dedupe_key}|{reason}|{message}".encode()).hexdigest()[:16]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.weir.{digest}", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"]},
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        if self.events is not None and not wait:
            self.events.submit(meta["namespace"], body)
        else:
            self.send_event(meta["namespace"], body)

    def send_event(self, namespace: str, body: dict[str, Any]) -> None:
        try:
            self.wire.request("POST", collection_path("", "v1", "events", namespace), body)
        except ApiException as error:
            if error.status != 409:  # 409: this very decision was already recorded
                raise

"""The HTTP face of the emulator: discovery, CRUD, patch, subresources, watch."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from typing import Any

import yaml
from aiohttp import web

from . import discovery, tables
from .conversion import view
from .encoding import Encoder
from .errors import ApiError, bad_request, method_not_allowed, not_found, unsupported_media_type
from .patch import json_patch, merge_patch, strategic_merge_patch
from .request_counter import RequestCounter
from .routing import Target, resource_target
from .selectors import parse_field_selector, parse_label_selector, selector_to_string
from .storage import JsonObject, Store
from .watch import serve_watch

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
# Built-in kinds whose DELETE answers the deleted object rather than a Status (as the official client expects).
_DELETE_RETURNS_OBJECT = {"Pod", "Service"}

log = logging.getLogger(__name__)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


def _error(error: ApiError) -> web.Response:
    return _json(error.status(), error.code)


async def _body(request: web.Request) -> Any:
    if "protobuf" in request.headers.get("Content-Type", ""):
        # kubectl's typed `create <kind>` commands send protobuf; decoding it needs every generated schema.
        raise ApiError(415, "UnsupportedMediaType", "the weir sandbox accepts JSON and YAML bodies only, not "
                       "protobuf: instead of `kubectl create <kind> ...`, use `kubectl apply -f` with a manifest")
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise bad_request(f"the request body is neither JSON nor YAML: {error}") from error


def _number(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise bad_request(f"{name} must be a number, got {value!r}") from error


def _scale_of(obj: JsonObject) -> JsonObject:
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                   "selector": selector_to_string((obj.get("spec") or {}).get("selector"))},
    }


class ApiServer:
    """aiohttp handlers bound to one Store."""

    def __init__(self, store: Store, *, bookmark_interval: float = 5.0) -> None:
        self.store = store
        self.bookmark_interval = bookmark_interval
        self.closing = asyncio.Event()
        self.server_address = "127.0.0.1:0"
        self.encoder = Encoder()
        self.requests = RequestCounter()  # served on GET /debug/requests

    def _object(self, obj: JsonObject, status: int = 200) -> web.Response:
        """A stored object, encoded once however often it is read."""
        return web.Response(body=self.encoder.encode(obj), status=status, content_type="application/json")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self.requests.middleware()])
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except ApiError as error:
            return _error(error)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as error:  # a bug here must still answer like an API server, and say what broke
            log.exception("sandbox API failed on %s %s", request.method, request.path)
            return _error(ApiError(500, "InternalError", f"an error on the server ({error!r}) has prevented the "
                                   "request from succeeding"))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        registry = self.store.registry
        if parts in (["healthz"], ["livez"], ["readyz"]):
            return web.Response(text="ok")
        if parts == ["version"]:
            return _json(discovery.KUBERNETES_VERSION)
        if parts == ["api"]:
            return _json(discovery.api_versions(self.server_address))
        if parts == ["apis"]:
            return _json(discovery.api_group_list(registry))
        if parts == ["openapi", "v3"]:
            return _json(discovery.openapi_v3_index(registry))
        if parts[:2] == ["openapi", "v3"]:
            document = discovery.openapi_v3_document(registry, "/".join(parts[2:]))
            if document is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json(document)
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) == 2:
            found = discovery.api_group(registry, parts[1])
            if found is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json(found)
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            listing = discovery.api_resource_list(registry, group, version)
            if listing is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json(listing)
        target = resource_target(registry, group, version, rest)
        return await self._resource(request, target)

    async def _resource(self, request: web.Request, target: Target) -> web.StreamResponse:
        method = request.method
        if target.subresource not in (None, "status", "scale") or (
                target.subresource == "status" and not target.rtype.has_status) or (
                target.subresource == "scale" and not target.rtype.has_scale):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if target.name is None:
            if method == "GET":
                return await self._list_or_watch(request, target)
            if method == "POST":
                return self._create(target, await _body(request), request)
            if method == "DELETE":
                return self._delete_collection(request, target)
            raise method_not_allowed(f"{method} is not supported on a collection")
        if method == "GET":
            return self._get(target)
        if method == "PUT":
            return self._update(target, await _body(request), request)
        if method == "PATCH":
            return self._patch(target, request.headers.get("Content-Type", ""), await _body(request), request)
        if method == "DELETE":
            return self._delete(target, await _body(request), request)
        raise method_not_allowed(f"{method} is not supported on {target.rtype.plural}")

    # ----- reads
    def _ns(self, target: Target) -> str:
        return target.namespace or ""

    def _get(self, target: Target) -> web.Response:
        obj = self.store.get(target.rtype, self._ns(target), target.name or "")
        if target.subresource == "scale":
            return _json(_scale_of(obj))
        return self._object(view(target.rtype, obj))

    async def _list_or_watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        query = request.query
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), target.rtype.kind)
        namespace = target.namespace if target.rtype.namespaced else None
        if query.get("watch") in _TRUE:
            try:
                since = int(query.get("resourceVersion") or 0)
            except ValueError as error:
                raise bad_request(f"invalid resourceVersion {query.get('resourceVersion')!r}") from error
            timeout = _number(query.get("timeoutSeconds"), "timeoutSeconds")
            return await serve_watch(
                request, self.store, self.encoder, target.rtype,
                {"namespace": namespace, "since": since, "labels": labels, "fields": fields},
                timeout_seconds=timeout,
                bookmarks=query.get("allowWatchBookmarks") in _TRUE,
                bookmark_interval=self.bookmark_interval, closing=self.closing,
                as_table="as=Table" in request.headers.get("Accept", ""))
        items = [view(target.rtype, o) for o in self.store.list(target.rtype, namespace, labels, fields)]
        version = str(self.store.resource_version)
        if "as=Table" in request.headers.get("Accept", ""):
            return _json(tables.table(target.rtype.kind, items, version))
        body = self.encoder.listing(target.rtype.list_kind, target.rtype.api_version, version, items)
        return web.Response(body=body, content_type="application/json")

    # ----- writes
    @staticmethod
    def _dry_run(request: web.Request) -> bool:
        return "All" in request.query.getall("dryRun", [])

    def _create(self, target: Target, body: Any, request: web.Request) -> web.Response:
        if target.subresource is not None:
            raise method_not_allowed("cannot create a subresource")
        if target.rtype.namespaced and target.namespace is None:
            raise method_not_allowed(f"POST to all-namespace {target.rtype.plural} is not supported; "
                                     "post to /namespaces/<ns>/...")
        created = self.store.create(target.rtype, self._ns(target), body, dry_run=self._dry_run(request))
        return self._object(created, 201)

    def _update(self, target: Target, body: Any, request: web.Request) -> web.Response:
        name, rtype = target.name or "", target.rtype
        if target.subresource == "scale":
            return _json(_scale_of(self._set_scale(target, body)))
        updated = self.store.update(rtype, self._ns(target), name, body, subresource=target.subresource,
                                    dry_run=self._dry_run(request))
        return self._object(view(rtype, updated))

    def _set_scale(self, target: Target, scale: Any) -> JsonObject:
        if not isinstance(scale, dict) or not isinstance((scale.get("spec") or {}).get("replicas"), int):
            raise bad_request("a Scale needs spec.replicas (an integer)")
        current = self.store.get(target.rtype, self._ns(target), target.name or "")
        new = copy.deepcopy(current)
        new["spec"]["replicas"] = scale["spec"]["replicas"]
        expected = (scale.get("metadata") or {}).get("resourceVersion")
        new["metadata"]["resourceVersion"] = expected or current["metadata"]["resourceVersion"]
        return self.store.update(target.rtype, self._ns(target), target.name or "", new)

    def _patch(self, target: Target, content_type: str, patch: Any, request: web.Request) -> web.Response:
        rtype, name, namespace = target.rtype, target.name or "", self._ns(target)
        media = content_type.split(";")[0].strip()
        if media == "application/apply-patch+yaml" and self.store.find(rtype, namespace, name) is None:
            if target.subresource:
                raise not_found(rtype.plural, rtype.group, name)
            return _json(self.store.create(rtype, namespace, patch, dry_run=self._dry_run(request)), 201)
        current = self.store.get(rtype, namespace, name)
        base = _scale_of(current) if target.subresource == "scale" else view(rtype, current)
        if media == "application/json-patch+json":
            result = json_patch(base, patch)
        elif media == "application/merge-patch+json":
            result = merge_patch(base, patch)
        elif media == "application/strategic-merge-patch+json":
            if rtype.custom:
                raise unsupported_media_type(media)
            result = strategic_merge_patch(base, patch)
        elif media == "application/apply-patch+yaml":
            # Server-side apply, simplified: field ownership is not tracked, the applied config merges in.
            result = merge_patch(base, patch) if rtype.custom else strategic_merge_patch(base, patch)
        else:
            raise unsupported_media_type(media)
        if not isinstance(result, dict):
            raise bad_request("the patched object is not a JSON object")
        if target.subresource == "scale":
            return _json(_scale_of(self._set_scale(target, result)))
        updated = self.store.update(rtype, namespace, name, result, subresource=target.subresource,
                                    dry_run=self._dry_run(request))
        return self._object(view(rtype, updated))

    def _delete_options(self, body: Any, request: web.Request) -> dict[str, Any]:
        options = body if isinstance(body, dict) else {}
        query = request.query
        grace = _number(options.get("gracePeriodSeconds", query.get("gracePeriodSeconds")), "gracePeriodSeconds")
        preconditions = options.get("preconditions") or {}
        return {
            "grace_seconds": None if grace is None else int(grace),
            "propagation": options.get("propagationPolicy", query.get("propagationPolicy")),
            "uid": preconditions.get("uid"),
            "resource_version": preconditions.get("resourceVersion"),
            "dry_run": "All" in (options.get("dryRun") or []) or self._dry_run(request),
        }

    def _delete(self, target: Target, body: Any, request: web.Request) -> web.Response:
        if target.subresource is not None:
            raise method_not_allowed("cannot delete a subresource")
        rtype, name = target.rtype, target.name or ""
        obj, removed = self.store.delete(rtype, self._ns(target), name, **self._delete_options(body, request))
        if removed and not rtype.custom and not (rtype.group == "" and rtype.kind in _DELETE_RETURNS_OBJECT):
            details: JsonObject = {"name": name, "kind": rtype.plural, "uid": obj["metadata"]["uid"]}
            if rtype.group:
                details["group"] = rtype.group
            return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                          "details": details})
        return _json(view(rtype, obj))

    def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        rtype = target.rtype
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(request.query.get("fieldSelector"), rtype.kind)
        options = self._delete_options(None, request)
        deleted = []
        for obj in self.store.list(rtype, target.namespace if rtype.namespaced else None, labels, fields):
            meta = obj["metadata"]
            gone, _ = self.store.delete(rtype, meta.get("namespace", ""), meta["name"], **options)
            deleted.append(gone)
        return _json({"kind": rtype.list_kind, "apiVersion": rtype.api_version,
                      "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": deleted})

"""Discovery documents (/api, /apis, /version) and the slice of OpenAPI v3 kubectl 1.32 reads.

kubectl checks OpenAPI v3 for a PATCH operation with the `fieldValidation` query parameter before it
trusts the server to validate; without it, it insists on client-side schema validation. We declare
that operation for every kind (and honour it by validating on the server). The PATCH operations carry
no request-body schema, so kubectl apply computes strategic merge patches from its compiled-in types.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import Registry, ResourceType

JsonObject = dict[str, Any]

KUBERNETES_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-weir-sandbox", "gitCommit": "weir",
                      "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23",
                      "compiler": "gc", "platform": "linux/amd64"}

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def api_versions(server_address: str) -> JsonObject:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_entry(group: str, versions: list[str]) -> JsonObject:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> JsonObject:
    groups = [_group_entry(g, vs) for g, vs in sorted(registry.group_versions().items()) if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> JsonObject | None:
    versions = registry.group_versions().get(group)
    if not versions:
        return None
    return dict(_group_entry(group, versions), kind="APIGroup", apiVersion="v1")


def _resource_entries(rtype: ResourceType) -> list[JsonObject]:
    main: JsonObject = {"name": rtype.plural, "singularName": rtype.singular, "namespaced": rtype.namespaced,
                        "kind": rtype.kind, "verbs": _VERBS}
    if rtype.short_names:
        main["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        main["categories"] = list(rtype.categories)
    entries = [main]
    if rtype.has_status:
        entries.append({"name": f"{rtype.plural}/status", "singularName": "", "namespaced": rtype.namespaced,
                        "kind": rtype.kind, "verbs": ["get", "patch", "update"]})
    if rtype.has_scale:
        entries.append({"name": f"{rtype.plural}/scale", "singularName": "", "namespaced": rtype.namespaced,
                        "group": "autoscaling", "version": "v1", "kind": "Scale",
                        "verbs": ["get", "patch", "update"]})
    return entries


def api_resource_list(registry: Registry, group: str, version: str) -> JsonObject | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources = [entry for rtype in sorted(types, key=lambda t: t.plural) for entry in _resource_entries(rtype)]
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _gv_document(registry: Registry, group: str, version: str) -> JsonObject:
    paths: JsonObject = {}
    for rtype in registry.in_group_version(group, version):
        prefix = "/" + _gv_path(group, version)
        scope = "/namespaces/{namespace}" if rtype.namespaced else ""
        gvk = {"group": group, "version": version, "kind": rtype.kind}
        parameters = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                      {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                      {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]

        def operation(action: str, gvk: JsonObject = gvk, parameters: list[JsonObject] = parameters) -> JsonObject:
            return {"operationId": f"{action}{gvk['kind']}", "parameters": parameters,
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk}

        paths[f"{prefix}{scope}/{rtype.plural}/{{name}}"] = {
            "get": operation("get"), "put": operation("put"), "patch": operation("patch"),
            "delete": operation("delete")}
        paths[f"{prefix}{scope}/{rtype.plural}"] = {"get": operation("list"), "post": operation("post")}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": {}}}


def openapi_v3_index(registry: Registry) -> JsonObject:
    index: JsonObject = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            path = _gv_path(group, version)
            digest = hashlib.sha256(json.dumps(_gv_document(registry, group, version), sort_keys=True).encode())
            index[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest.hexdigest()[:32].upper()}"}
    return {"paths": index}


def openapi_v3_document(registry: Registry, path: str) -> JsonObject | None:
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[:1] == ["apis"] and len(parts) == 3:
        group, version = parts[1], parts[2]
    else:
        return None
    if not registry.in_group_version(group, version):
        return None
    return _gv_document(registry, group, version)

"""The three patch formats of kube-apiserver: JSON merge (RFC 7386), JSON patch (RFC 6902) and strategic merge.

Strategic merge knows the merge keys of the built-in types (what the Go structs' `patchMergeKey` tags say)
and the directives kubectl emits: `$patch`, `$retainKeys`, `$setElementOrder/<list>`,
`$deleteFromPrimitiveList/<list>`.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError, bad_request

JsonObject = dict[str, Any]

# list field -> merge key; "ports" depends on where it sits (containers vs. services).
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "conditions": "type",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
_CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}
# Lists of scalars that strategic merge unions instead of replacing.
_MERGED_PRIMITIVE_LISTS = {"finalizers"}


def _merge_key(field: str, parent_list: str | None) -> str | None:
    if field == "ports":
        return "containerPort" if parent_list in _CONTAINER_LISTS else "port"
    return _MERGE_KEYS.get(field)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"json patch path {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve_parent(doc: Any, parts: list[str], path: str) -> Any:
    current = doc
    for part in parts[:-1]:
        try:
            current = current[int(part)] if isinstance(current, list) else current[part]
        except (KeyError, IndexError, ValueError, TypeError) as error:
            raise ApiError(422, "Invalid", f"json patch: path {path!r} does not exist") from error
    return current


def _index(container: list[Any], part: str, path: str, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(container)
    try:
        index = int(part)
    except ValueError as error:
        raise ApiError(422, "Invalid", f"json patch: {part!r} in {path!r} is not an array index") from error
    if index < 0 or index > len(container) - (0 if allow_end else 1):
        raise ApiError(422, "Invalid", f"json patch: index {index} out of range in {path!r}")
    return index


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _resolve_parent(doc, parts, path)
    try:
        return parent[_index(parent, parts[-1], path, False)] if isinstance(parent, list) else parent[parts[-1]]
    except (KeyError, TypeError) as error:
        raise ApiError(422, "Invalid", f"json patch: path {path!r} does not exist") from error


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _resolve_parent(doc, parts, path)
    if isinstance(parent, list):
        parent.insert(_index(parent, parts[-1], path, True), value)
    elif isinstance(parent, dict):
        parent[parts[-1]] = value
    else:
        raise ApiError(422, "Invalid", f"json patch: cannot add at {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent = _resolve_parent(doc, parts, path)
    if isinstance(parent, list):
        del parent[_index(parent, parts[-1], path, False)]
    elif isinstance(parent, dict) and parts[-1] in parent:
        del parent[parts[-1]]
    else:
        raise ApiError(422, "Invalid", f"json patch: path {path!r} does not exist")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 on a copy of `target`; a failed `test` or a missing path is 422 like the real server."""
    if not isinstance(operations, list):
        raise bad_request("a json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise bad_request(f"json patch operation {operation!r} needs 'op' and 'path'")
        op, path = operation["op"], operation["path"]
        if op == "add":
            doc = _add(doc, path, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            doc = _remove(doc, path)
        elif op == "replace":
            _get(doc, path)
            doc = _add(_remove(doc, path), path, copy.deepcopy(operation.get("value"))) if _pointer(path) \
                else copy.deepcopy(operation.get("value"))
        elif op in ("move", "copy"):
            value = copy.deepcopy(_get(doc, operation.get("from", "")))
            if op == "move":
                doc = _remove(doc, operation["from"])
            doc = _add(doc, path, value)
        elif op == "test":
            if _get(doc, path) != operation.get("value"):
                raise ApiError(422, "Invalid", f"json patch: test failed at {path!r}")
        else:
            raise bad_request(f"json patch: unknown op {op!r}")
    return doc


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge of `patch` into a copy of `target` (built-in kinds only, like the real server)."""
    if not isinstance(patch, dict):
        raise bad_request("a strategic merge patch must be a JSON object")
    return _merge_map(target if isinstance(target, dict) else {}, patch, None)


def _merge_map(target: JsonObject, patch: JsonObject, parent_list: str | None) -> JsonObject:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    result = dict(target)
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            merged = _merge_map(current if isinstance(current, dict) else {}, value, None)
            if value.get("$patch") == "delete":
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            current = result.get(key)
            result[key] = _merge_list(key, current if isinstance(current, list) else [], value, parent_list)
        else:
            result[key] = copy.deepcopy(value)
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _apply_order(field, result[field], order, parent_list)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(field: str, target: list[Any], patch: list[Any], parent_list: str | None) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    if field in _MERGED_PRIMITIVE_LISTS:
        merged = list(target)
        merged.extend(v for v in patch if v not in merged)
        return merged
    key = _merge_key(field, parent_list)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return copy.deepcopy(patch)
    result = list(target)
    for item in patch:
        wanted = item.get(key)
        position = next((i for i, t in enumerate(result) if isinstance(t, dict) and t.get(key) == wanted), None)
        if item.get("$patch") == "delete":
            if position is not None:
                del result[position]
            continue
        if position is None:
            result.append(_merge_map({}, item, field))
        else:
            result[position] = _merge_map(result[position], item, field)
    return result


def _apply_order(field: str, items: list[Any], order: list[Any], parent_list: str | None) -> list[Any]:
    """`$setElementOrder`: put the listed elements first in the given order, others after, as kubectl expects."""
    key = _merge_key(field, parent_list)

    def identity(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [identity(o) for o in order]
    ranked = {value: rank for rank, value in enumerate(wanted)}
    return sorted(items, key=lambda item: ranked.get(identity(item), len(ranked)))

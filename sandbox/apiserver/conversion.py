"""How stored objects look through another group or version than the one they are stored in.

- Custom resources served in several versions are stored once; each version only changes apiVersion
  (the sandbox does no schema conversion, like a CRD with `conversion: None`).
- Events are stored as core/v1 and also served as events.k8s.io/v1, whose fields have other names.
"""

from __future__ import annotations

from typing import Any

from .resources import ResourceType

JsonObject = dict[str, Any]

# core/v1 Event field -> events.k8s.io/v1 Event field
_EVENT_FIELDS = {
    "involvedObject": "regarding",
    "message": "note",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
    "reportingComponent": "reportingController",
}
_EVENT_FIELDS_BACK = {v: k for k, v in _EVENT_FIELDS.items()}


def _is_events_group(rtype: ResourceType) -> bool:
    return rtype.group == "events.k8s.io" and rtype.kind == "Event"


def view(rtype: ResourceType, obj: JsonObject) -> JsonObject:
    """The stored object as a client of `rtype`'s group/version sees it."""
    if _is_events_group(rtype):
        converted = {_EVENT_FIELDS.get(k, k): v for k, v in obj.items()}
        converted["apiVersion"] = rtype.api_version
        return converted
    if obj.get("apiVersion") == rtype.api_version:
        return obj
    return dict(obj, apiVersion=rtype.api_version)


def to_storage(rtype: ResourceType, obj: JsonObject) -> JsonObject:
    """A client's object, in the form the store keeps (the inverse of `view`)."""
    if _is_events_group(rtype):
        converted = {_EVENT_FIELDS_BACK.get(k, k): v for k, v in obj.items()}
        converted["apiVersion"] = "v1"
        return converted
    return obj

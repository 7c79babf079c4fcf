"""The validation a controller can trip over: names, Deployment specs, label values."""

from __future__ import annotations

import re
from typing import Any

from .errors import Cause, invalid
from .resources import ResourceType

JsonObject = dict[str, Any]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_PERCENT = re.compile(r"^\d+%$")
# Kinds whose names must be DNS-1123 labels rather than subdomains.
_LABEL_NAMED = {"Namespace", "Service"}


def _check_name(rtype: ResourceType, name: str, causes: list[Cause]) -> None:
    pattern = _LABEL if rtype.kind in _LABEL_NAMED else _SUBDOMAIN
    limit = 63 if rtype.kind in _LABEL_NAMED else 253
    if not pattern.match(name) or len(name) > limit:
        causes.append(Cause("metadata.name", f'Invalid value: "{name}": a lowercase RFC 1123 '
                            f"{'label' if limit == 63 else 'subdomain'} must consist of lower case alphanumeric "
                            "characters, '-' or '.', and must start and end with an alphanumeric character"))


def _check_labels(obj: JsonObject, causes: list[Cause]) -> None:
    labels = obj.get("metadata", {}).get("labels") or {}
    if not isinstance(labels, dict):
        causes.append(Cause("metadata.labels", "Invalid value: labels must be a map of strings"))
        return
    for key, value in labels.items():
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(Cause("metadata.labels", f'Invalid value: "{value}": a valid label value for {key!r} '
                                "must be 63 characters or less, alphanumeric, '-', '_' or '.'"))


def _int_or_percent(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, str) and bool(_PERCENT.match(value)))


def _is_zero(value: Any) -> bool:
    return value == 0 or value == "0%"


def _check_workload(obj: JsonObject, causes: list[Cause], deployment: bool) -> None:
    spec = obj.get("spec") or {}
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        causes.append(Cause("spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0"))
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(Cause("spec.selector", "Required value", "FieldValueRequired"))
    template = spec.get("template") or {}
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if isinstance(selector, dict):
        for key, value in (selector.get("matchLabels") or {}).items():
            if template_labels.get(key) != value:
                causes.append(Cause("spec.template.metadata.labels",
                                    f"Invalid value: {template_labels!r}: `selector` does not match template "
                                    "`labels`"))
                break
    containers = (template.get("spec") or {}).get("containers")
    if not containers:
        causes.append(Cause("spec.template.spec.containers", "Required value", "FieldValueRequired"))
    if not deployment:
        return
    strategy = spec.get("strategy") or {}
    if strategy.get("type") not in ("RollingUpdate", "Recreate"):
        causes.append(Cause("spec.strategy.type", f'Unsupported value: "{strategy.get("type")}": supported values: '
                            '"Recreate", "RollingUpdate"', "FieldValueNotSupported"))
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "Recreate" and rolling:
        causes.append(Cause("spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` "
                            "is 'Recreate'", "FieldValueForbidden"))
    if isinstance(rolling, dict):
        surge, unavailable = rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%")
        for field, value in (("maxSurge", surge), ("maxUnavailable", unavailable)):
            if not _int_or_percent(value):
                causes.append(Cause(f"spec.strategy.rollingUpdate.{field}",
                                    f"Invalid value: {value!r}: must be a non-negative integer or a percentage"))
        if _is_zero(surge) and _is_zero(unavailable):
            causes.append(Cause("spec.strategy.rollingUpdate.maxUnavailable",
                                "Invalid value: 0: may not be 0 when `maxSurge` is 0"))
        if isinstance(unavailable, str) and _PERCENT.match(unavailable) and int(unavailable[:-1]) > 100:
            causes.append(Cause("spec.strategy.rollingUpdate.maxUnavailable",
                                f"Invalid value: {unavailable!r}: must not be greater than 100%"))
    for field in ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < 0):
            causes.append(Cause(f"spec.{field}", f"Invalid value: {value!r}: must be greater than or equal to 0"))
    deadline, min_ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
    if isinstance(deadline, int) and isinstance(min_ready, int) and deadline <= min_ready:
        causes.append(Cause("spec.progressDeadlineSeconds",
                            f"Invalid value: {deadline}: must be greater than minReadySeconds"))


def validate(rtype: ResourceType, obj: JsonObject) -> None:
    """Raise 422 Invalid naming every bad field, as the real server does."""
    causes: list[Cause] = []
    name = obj.get("metadata", {}).get("name", "")
    _check_name(rtype, name, causes)
    _check_labels(obj, causes)
    if rtype.group == "apps" and rtype.kind in ("Deployment", "ReplicaSet"):
        _check_workload(obj, causes, deployment=rtype.kind == "Deployment")
    if rtype.kind == "Pod" and not (obj.get("spec") or {}).get("containers"):
        causes.append(Cause("spec.containers", "Required value", "FieldValueRequired"))
    if causes:
        raise invalid(rtype.kind, rtype.group, name, causes)


def validate_update(rtype: ResourceType, old: JsonObject, new: JsonObject) -> None:
    """Fields the real server refuses to change once set."""
    if rtype.group == "apps" and rtype.kind in ("Deployment", "ReplicaSet"):
        before, after = (old.get("spec") or {}).get("selector"), (new.get("spec") or {}).get("selector")
        if before != after:
            name = new.get("metadata", {}).get("name", "")
            raise invalid(rtype.kind, rtype.group, name, [Cause(
                "spec.selector", f"Invalid value: {after!r}: field is immutable; delete and recreate the "
                f"{rtype.kind} to change its selector")])

"""What a CustomResourceDefinition registers: one ResourceType per served version."""

from __future__ import annotations

import copy
from typing import Any

from .errors import Cause, invalid
from .resources import ResourceType

JsonObject = dict[str, Any]


def resource_types(crd: JsonObject) -> list[ResourceType]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group", ""), names.get("plural", ""), names.get("kind", "")
    causes = []
    if not group:
        causes.append(Cause("spec.group", "Required value", "FieldValueRequired"))
    if not plural:
        causes.append(Cause("spec.names.plural", "Required value", "FieldValueRequired"))
    if not kind:
        causes.append(Cause("spec.names.kind", "Required value", "FieldValueRequired"))
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    if not versions:
        causes.append(Cause("spec.versions", "Invalid value: must have exactly one version marked as storage"))
    expected = f"{plural}.{group}"
    name = crd.get("metadata", {}).get("name", "")
    if plural and group and name != expected:
        causes.append(Cause("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(Cause("spec.scope", f'Unsupported value: "{spec.get("scope")}": supported values: '
                            '"Cluster", "Namespaced"', "FieldValueNotSupported"))
    if causes:
        raise invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes)
    return [
        ResourceType(
            group=group,
            version=version["name"],
            kind=kind,
            plural=plural,
            namespaced=spec.get("scope") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            has_status="status" in (version.get("subresources") or {}),
            has_scale="scale" in (version.get("subresources") or {}),
            custom=True,
            categories=tuple(names.get("categories") or ()),
        )
        for version in versions
    ]


def established_status(crd: JsonObject, now: str) -> JsonObject:
    """The status the real apiextensions controller writes once the names are accepted."""
    names = copy.deepcopy((crd.get("spec") or {}).get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    conditions = [
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
         "message": "no conflicts found", "lastTransitionTime": now},
        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
         "message": "the initial names have been accepted", "lastTransitionTime": now},
    ]
    stored = [v["name"] for v in (crd.get("spec") or {}).get("versions") or [] if v.get("storage")]
    return {"acceptedNames": names, "conditions": conditions, "storedVersions": stored}

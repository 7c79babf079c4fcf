"""Which objects a router owns: the labels and ownerReference it puts on everything it creates, and
the checks that keep it from touching anything else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.base import OwnerRef, Route, RouterError

# The same values as canary.annotations (a test keeps them equal); repeated here so that adapters/
# does not depend on the controller package that uses it.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "weir"
RELEASE_OF_LABEL = "weir.dev/release-of"


def managed_labels(route: Route) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, RELEASE_OF_LABEL: route.name}


def owner_reference(owner: OwnerRef) -> dict[str, Any]:
    # No blockOwnerDeletion: setting it needs `update` on deployments/finalizers, a permission the
    # controller has no other use for (least-privilege RBAC).
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
    }


def is_managed(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE)


def claim(obj: dict[str, Any], route: Route) -> dict[str, Any]:
    """Put Weir's labels and the Deployment's ownerReference on `obj` (in place), keeping the rest."""
    metadata = obj.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **managed_labels(route)}
    ours = owner_reference(route.owner)
    references = [ours if ref.get("uid") == ours["uid"] else ref for ref in metadata.get("ownerReferences") or []]
    if ours not in references:
        references.append(ours)
    metadata["ownerReferences"] = references
    return obj


def refuse_foreign(obj: Mapping[str, Any] | None, field: str, kind: str, name: str) -> None:
    """A name Weir wants to create is taken by an object Weir did not create: never overwrite it."""
    if obj is not None and not is_managed(obj):
        raise RouterError(
            field,
            f"{kind} {name} already exists and is not managed by Weir (no label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE})",
            f"rename or delete that {kind}, or label it {MANAGED_BY_LABEL}={MANAGED_BY_VALUE} to hand it over to Weir",
        )

"""The workload model (DESIGN §2), as pure functions over Deployment objects (dicts as the API returns them).

The user's Deployment `<name>` is the source of truth and the canary. `<name>-primary` is a copy of a
promoted template whose selector labels are rewritten (`<value>-primary`) so the two Deployments never
select each other's pods.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from adapters.base import OwnerRef, Route
from adapters.ownership import owner_reference
from canary.annotations import MANAGED_BY_LABEL, MANAGED_BY_VALUE, PART_OF_LABEL, PREFIX
from canary.config import ConfigError

PRIMARY_SUFFIX = "-primary"
CANARY_SUFFIX = "-canary"
TEMPLATE_HASH = PREFIX + "template-hash"  # on `<name>-primary`: which user template it runs
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def primary_name(name: str) -> str:
    return name + PRIMARY_SUFFIX


def template_hash(deployment: Mapping[str, Any]) -> str:
    """A stable hash of the pod template: a change of it is a new revision to release."""
    template = (deployment.get("spec") or {}).get("template") or {}
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def selector_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    """The user's selector, checked to be rewritable; raises ConfigError naming the field and fix."""
    selector = (deployment.get("spec") or {}).get("selector") or {}
    if selector.get("matchExpressions"):
        raise ConfigError("spec.selector.matchExpressions", "Weir cannot rewrite set-based selectors",
                          "select pods with spec.selector.matchLabels only")
    labels = dict(selector.get("matchLabels") or {})
    if not labels:
        raise ConfigError("spec.selector.matchLabels", "is empty, so there is no label to rewrite for the primary",
                          "select pods with at least one label, e.g. app: <name>")
    for key, value in labels.items():
        rewritten = str(value) + PRIMARY_SUFFIX
        if len(rewritten) > 63 or not _LABEL_VALUE.fullmatch(rewritten):
            raise ConfigError(f"spec.selector.matchLabels.{key}",
                              f"{value!r} + '{PRIMARY_SUFFIX}' is not a valid label value (at most 63 characters)",
                              f"shorten the label value to at most {63 - len(PRIMARY_SUFFIX)} characters")
    return labels


def primary_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: v + PRIMARY_SUFFIX for k, v in labels.items()}


def owner_of(deployment: Mapping[str, Any]) -> OwnerRef:
    meta = deployment["metadata"]
    return OwnerRef("apps/v1", "Deployment", meta["name"], meta["uid"])


def build_primary(deployment: Mapping[str, Any], replicas: int) -> dict[str, Any]:
    """`<name>-primary` running the user's current template, owned by the user's Deployment."""
    meta = deployment["metadata"]
    spec = deployment["spec"]
    user_labels = selector_labels(deployment)
    rewritten = primary_labels(user_labels)
    template = copy.deepcopy(spec["template"])
    template.setdefault("metadata", {})
    template["metadata"]["labels"] = {**(template["metadata"].get("labels") or {}), **rewritten}
    owner = owner_of(deployment)
    primary_spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": rewritten},
        "template": template,
    }
    for key in ("strategy", "minReadySeconds", "progressDeadlineSeconds", "revisionHistoryLimit"):
        if key in spec:
            primary_spec[key] = copy.deepcopy(spec[key])
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": primary_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {**(meta.get("labels") or {}), MANAGED_BY_LABEL: MANAGED_BY_VALUE, PART_OF_LABEL: meta["name"]},
            "annotations": {TEMPLATE_HASH: template_hash(deployment)},
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": primary_spec,
    }


def primary_template_hash(primary: Mapping[str, Any] | None) -> str | None:
    if primary is None:
        return None
    return ((primary.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_HASH)


def build_route(deployment: Mapping[str, Any], ingress: str | None, route: str | None) -> Route:
    meta = deployment["metadata"]
    labels = selector_labels(deployment)
    return Route(
        namespace=meta["namespace"],
        name=meta["name"],
        primary_service=meta["name"] + PRIMARY_SUFFIX,
        canary_service=meta["name"] + CANARY_SUFFIX,
        owner=owner_of(deployment),
        primary_selector=tuple(sorted(primary_labels(labels).items())),
        canary_selector=tuple(sorted(labels.items())),
        ingress=ingress,
        gateway_route=route,
    )


def progress_deadline(deployment: Mapping[str, Any], configured: float | None) -> float:
    if configured is not None:
        return configured
    seconds = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    return float(seconds) if seconds else 600.0


def container_ports(deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Deployment's container ports, as Service ports (for an apex Service Weir must create)."""
    ports: list[dict[str, Any]] = []
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    for container in containers:
        for port in container.get("ports") or []:
            entry = {"port": port["containerPort"], "targetPort": port["containerPort"],
                     "protocol": port.get("protocol", "TCP")}
            if port.get("name"):
                entry["name"] = port["name"]
            ports.append(entry)
    return ports

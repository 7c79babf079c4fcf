"""The arithmetic of kube-controller-manager's Deployment controller, kept pure so tests can pin it.

Sources of the rules (Kubernetes `pkg/controller/deployment/util`): percentages scale with the desired
replicas, maxSurge rounding up and maxUnavailable rounding down; when both resolve to 0, maxUnavailable
becomes 1; the new ReplicaSet grows while the sum of all ReplicaSets' replicas stays within
replicas + maxSurge; old ReplicaSets shrink while available pods stay at or above replicas - maxUnavailable.
The annotations follow `SetNewReplicaSetAnnotations` / `copyDeploymentAnnotationsToReplicaSet` /
`SetReplicasAnnotations`: the Deployment's annotations (except the skipped ones) are copied onto its new
ReplicaSet, which is what `kubectl rollout undo` later writes back into the Deployment.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
# Never copied from a Deployment to its ReplicaSets (and kept from the Deployment by `rollout undo`).
SKIPPED_ANNOTATIONS = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
})
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """An int-or-percent against `total`, rounded the way the real controller rounds."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def fenceposts(max_surge: int | str | None, max_unavailable: int | str | None, desired: int) -> tuple[int, int]:
    surge = scaled_value(max_surge, desired, round_up=True)
    unavailable = scaled_value(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # the real controller's fallback when both percentages round to zero
    return surge, unavailable


def rolling_parameters(spec: Mapping[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved; Recreate and 0 replicas allow no unavailability (MaxUnavailable())."""
    desired = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or desired == 0:
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    surge, unavailable = fenceposts(rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%"), desired)
    return surge, min(unavailable, desired)


def template_hash(template: Mapping[str, Any]) -> str:
    """A stable hash of the pod template (without its own hash label), spelled like the real one."""
    clean = json.loads(json.dumps(template))
    labels = (clean.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    number = int.from_bytes(hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).digest()[:4], "big")
    encoded = []
    while number:
        number, digit = divmod(number, len(_SAFE_ALPHABET))
        encoded.append(_SAFE_ALPHABET[digit])
    return "".join(encoded)[:10] or _SAFE_ALPHABET[0]


@dataclass(frozen=True)
class ReplicaSetCounts:
    """What the Deployment controller needs of one ReplicaSet."""

    name: str
    replicas: int  # spec
    available: int  # status
    created: str  # creationTimestamp, for oldest-first ordering


def new_replicaset_target(desired: int, max_surge: int, new: ReplicaSetCounts | None,
                          all_sets: list[ReplicaSetCounts]) -> int:
    """reconcileNewReplicaSet: how many replicas the new ReplicaSet should have now."""
    current_new = new.replicas if new else 0
    if current_new >= desired:
        return desired
    current_total = sum(rs.replicas for rs in all_sets)
    room = desired + max_surge - current_total
    if room <= 0:
        return current_new
    return current_new + min(room, desired - current_new)


def old_replicaset_targets(desired: int, max_unavailable: int, new: ReplicaSetCounts | None,
                           old: list[ReplicaSetCounts]) -> dict[str, int]:
    """reconcileOldReplicaSets: new spec.replicas per old ReplicaSet (only those that change)."""
    old = sorted(old, key=lambda rs: (rs.created, rs.name))
    if sum(rs.replicas for rs in old) == 0:
        return {}
    everything = old + ([new] if new else [])
    min_available = desired - max_unavailable
    new_unavailable = (new.replicas - new.available) if new else 0
    max_scaled_down = sum(rs.replicas for rs in everything) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    targets: dict[str, int] = {}
    cleaned = 0
    # First drop old pods that are not available anyway: that costs no availability.
    for rs in old:
        if cleaned >= max_scaled_down:
            break
        if rs.replicas == 0 or rs.replicas == rs.available:
            continue
        count = min(max_scaled_down - cleaned, rs.replicas - rs.available)
        targets[rs.name] = rs.replicas - count
        cleaned += count
    available = sum(rs.available for rs in everything)
    if available <= min_available:
        return targets
    budget = available - min_available
    scaled = 0
    for rs in old:
        if scaled >= budget:
            break
        replicas = targets.get(rs.name, rs.replicas)
        if replicas == 0:
            continue
        count = min(replicas, budget - scaled)
        targets[rs.name] = replicas - count
        scaled += count
    return targets


def _as_revision(value: str | None) -> int:
    try:
        return int(value or "0")
    except ValueError:
        return 0


def new_replicaset_annotations(deployment: Mapping[str, str], current: Mapping[str, str], revision: int,
                               ) -> dict[str, str]:
    """The new ReplicaSet's annotations: the Deployment's copied over (added or overwritten, never removed),
    the revision raised to `revision` if lower, and a replaced revision remembered in revision-history."""
    result = dict(current)
    result.update((k, v) for k, v in deployment.items() if k not in SKIPPED_ANNOTATIONS)
    previous = current.get(REVISION_ANNOTATION)
    if _as_revision(previous) < revision:
        result[REVISION_ANNOTATION] = str(revision)
        if previous is not None:  # an old ReplicaSet made new again (rollout undo): keep its earlier number
            history = current.get(REVISION_HISTORY_ANNOTATION)
            result[REVISION_HISTORY_ANNOTATION] = f"{history},{previous}" if history else previous
    return result


def replicas_annotations(desired: int, max_surge: int) -> dict[str, str]:
    """What a ReplicaSet records of its Deployment's size whenever it is created or scaled."""
    return {DESIRED_REPLICAS_ANNOTATION: str(desired), MAX_REPLICAS_ANNOTATION: str(desired + max_surge)}

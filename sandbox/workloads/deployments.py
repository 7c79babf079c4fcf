"""The Deployment controller: ReplicaSets per pod template, rolling or recreate updates, and a true status."""

from __future__ import annotations

import time
from typing import Any

from ..apiserver.resources import ResourceType
from ..apiserver.storage import JsonObject, Store
from .objects import controller_uid, copy_of, now, owner_reference, parse_time, write_object, write_status
from .rollout import (
    HASH_LABEL,
    REVISION_ANNOTATION,
    ReplicaSetCounts,
    new_replicaset_annotations,
    new_replicaset_target,
    old_replicaset_targets,
    replicas_annotations,
    rolling_parameters,
    template_hash,
)


def _counts(rs: JsonObject) -> ReplicaSetCounts:
    return ReplicaSetCounts(rs["metadata"]["name"], int(rs["spec"].get("replicas", 0)),
                            int((rs.get("status") or {}).get("availableReplicas", 0)),
                            rs["metadata"].get("creationTimestamp", ""))


def _replicas_annotations(spec: JsonObject) -> dict[str, str]:
    surge, _ = rolling_parameters(spec)
    return replicas_annotations(int(spec.get("replicas", 1)), surge)


def _revision(rs: JsonObject) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "0"))
    except ValueError:
        return 0


class DeploymentSync:
    """One pass over one Deployment; `run()` returns seconds until it wants another look, or None."""

    def __init__(self, store: Store, namespace: str, name: str) -> None:
        self.store = store
        self.namespace = namespace
        self.name = name
        self.deployments = store.registry.resource("apps", "deployments")
        self.replicasets = store.registry.resource("apps", "replicasets")
        self.pods = store.registry.resource("", "pods")

    def run(self) -> float | None:
        deployment = self.store.find(self.deployments, self.namespace, self.name)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return None
        uid = deployment["metadata"]["uid"]
        owned = [rs for rs in self.store.owned_by(self.replicasets, uid) if controller_uid(rs) == uid]
        spec = deployment["spec"]
        wanted_hash = template_hash(spec.get("template") or {})
        new = next((rs for rs in owned if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == wanted_hash), None)
        old = [rs for rs in owned if rs is not new]
        created = False
        if new is not None:
            new = self._sync_min_ready(new, spec)
        if spec.get("paused"):
            new = self._scale_paused(spec, new, owned)
        elif (spec.get("strategy") or {}).get("type") == "Recreate":
            new, created = self._recreate(deployment, new, old, wanted_hash)
        else:
            new, created = self._rolling(deployment, new, old, wanted_hash)
        old = [self.store.find(self.replicasets, self.namespace, rs["metadata"]["name"]) or rs for rs in old]
        if new is not None:
            self._sync_new_replicaset(deployment, new, old)
        return self._write_status(new, old, created)

    # ----- ReplicaSets
    def _create_replicaset(self, deployment: JsonObject, wanted_hash: str, replicas: int,
                           revision: int) -> JsonObject:
        template = copy_of(deployment["spec"].get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = wanted_hash
        selector = copy_of(deployment["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = wanted_hash
        labels = dict(template["metadata"]["labels"])
        annotations = new_replicaset_annotations(deployment["metadata"].get("annotations") or {}, {}, revision)
        annotations.update(_replicas_annotations(deployment["spec"]))
        spec: dict[str, Any] = {"replicas": replicas, "selector": selector, "template": template}
        if deployment["spec"].get("minReadySeconds"):
            spec["minReadySeconds"] = deployment["spec"]["minReadySeconds"]
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{deployment['metadata']['name']}-{wanted_hash}", "labels": labels,
                           "annotations": annotations, "ownerReferences": [owner_reference(deployment)]},
              "spec": spec}
        return self.store.create(self.replicasets, self.namespace, rs)

    def _sync_min_ready(self, rs: JsonObject, spec: JsonObject) -> JsonObject:
        """The new ReplicaSet follows the Deployment's minReadySeconds (it decides when pods count as available)."""
        wanted = spec.get("minReadySeconds") or 0
        if (rs["spec"].get("minReadySeconds") or 0) == wanted:
            return rs
        updated = copy_of(rs)
        updated["spec"]["minReadySeconds"] = wanted
        return write_object(self.store, self.replicasets, updated)

    def _scale_paused(self, spec: JsonObject, new: JsonObject | None, owned: list[JsonObject]) -> JsonObject | None:
        """Paused: no rollout, but scaling still applies to the one ReplicaSet that runs (no proportional split)."""
        active = [rs for rs in owned if int(rs["spec"].get("replicas", 0))]
        target = active[0] if len(active) == 1 else (new if not active else None)
        if target is None:
            return new
        scaled = self._scale(target, int(spec.get("replicas", 1)), spec)
        return scaled if target is new else new

    def _scale(self, rs: JsonObject, replicas: int, spec: JsonObject) -> JsonObject:
        """scaleReplicaSet: a ReplicaSet that is resized also records the Deployment's size."""
        if int(rs["spec"].get("replicas", 0)) == replicas:
            return rs
        new = copy_of(rs)
        new["spec"]["replicas"] = replicas
        new["metadata"].setdefault("annotations", {}).update(_replicas_annotations(spec))
        return write_object(self.store, self.replicasets, new)

    def _rolling(self, deployment: JsonObject, new: JsonObject | None, old: list[JsonObject],
                 wanted_hash: str) -> tuple[JsonObject | None, bool]:
        spec = deployment["spec"]
        desired = int(spec.get("replicas", 1))
        surge, unavailable = rolling_parameters(spec)
        old_counts = [_counts(rs) for rs in old]
        created = False
        if new is None:
            target = new_replicaset_target(desired, surge, None, old_counts)
            revision = max([_revision(rs) for rs in old] + [0]) + 1
            new = self._create_replicaset(deployment, wanted_hash, target, revision)
            created = True
        else:
            new = self._scale(new, new_replicaset_target(desired, surge, _counts(new), [*old_counts, _counts(new)]),
                              spec)
        targets = old_replicaset_targets(desired, unavailable, _counts(new), old_counts)
        for rs in old:
            if rs["metadata"]["name"] in targets:
                self._scale(rs, targets[rs["metadata"]["name"]], spec)
        return new, created

    def _recreate(self, deployment: JsonObject, new: JsonObject | None, old: list[JsonObject],
                  wanted_hash: str) -> tuple[JsonObject | None, bool]:
        for rs in old:
            self._scale(rs, 0, deployment["spec"])
        if any(self.store.owned_by(self.pods, rs["metadata"]["uid"]) for rs in old):
            return new, False  # Recreate waits until every old pod is gone, terminating ones included
        desired = int(deployment["spec"].get("replicas", 1))
        if new is None:
            revision = max([_revision(rs) for rs in old] + [0]) + 1
            return self._create_replicaset(deployment, wanted_hash, desired, revision), True
        return self._scale(new, desired, deployment["spec"]), False

    def _sync_new_replicaset(self, deployment: JsonObject, new: JsonObject, old: list[JsonObject]) -> None:
        """The new ReplicaSet carries the highest revision and a copy of the Deployment's annotations (what
        `rollout undo` restores); the Deployment mirrors the revision (`rollout history`)."""
        highest = max([_revision(rs) for rs in old] + [0])
        current_annotations = new["metadata"].get("annotations") or {}
        annotations = new_replicaset_annotations(deployment["metadata"].get("annotations") or {},
                                                 current_annotations, highest + 1)
        if annotations != current_annotations:
            updated = copy_of(new)
            updated["metadata"]["annotations"] = annotations
            new = write_object(self.store, self.replicasets, updated)
        revision = _revision(new)
        current = self.store.find(self.deployments, self.namespace, self.name)
        if current is None:
            return
        if (current["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION) != str(revision):
            updated = copy_of(current)
            updated["metadata"].setdefault("annotations", {})[REVISION_ANNOTATION] = str(revision)
            write_object(self.store, self.deployments, updated)
        limit = current["spec"].get("revisionHistoryLimit", 10)
        idle = sorted((rs for rs in old if not rs["spec"].get("replicas") and not (rs.get("status") or {}).get(
            "replicas")), key=_revision)
        for rs in idle[: max(0, len(idle) - int(limit))]:
            self.store.delete(self.replicasets, self.namespace, rs["metadata"]["name"])

    # ----- status
    def _write_status(self, new: JsonObject | None, old: list[JsonObject], created: bool) -> float | None:
        deployment = self.store.find(self.deployments, self.namespace, self.name)
        if deployment is None:
            return None
        new = self.store.find(self.replicasets, self.namespace, new["metadata"]["name"]) if new else None
        sets = old + ([new] if new else [])
        spec = deployment["spec"]
        desired = int(spec.get("replicas", 1))
        _, max_unavailable = rolling_parameters(spec)

        def total(field: str, items: list[JsonObject]) -> int:
            return sum(int((rs.get("status") or {}).get(field, 0)) for rs in items)

        available = total("availableReplicas", sets)
        status: dict[str, Any] = {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": total("replicas", sets),
            "updatedReplicas": total("replicas", [new]) if new else 0,
            "readyReplicas": total("readyReplicas", sets),
            "availableReplicas": available,
            "unavailableReplicas": max(0, sum(int(rs["spec"].get("replicas", 0)) for rs in sets) - available),
        }
        previous = deployment.get("status") or {}
        conditions = [dict(c) for c in previous.get("conditions") or []]
        stamp = now()
        if available >= desired - max_unavailable:
            _set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", stamp)
        else:
            _set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.", stamp)
        rs_name = new["metadata"]["name"] if new else ""
        requeue = None
        if spec.get("paused"):
            _set_condition(conditions, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", stamp)
        else:
            current = _find(conditions, "Progressing")
            if current and current.get("reason") == "DeploymentPaused":
                _set_condition(conditions, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed",
                               stamp)
            if created:
                _set_condition(conditions, "Progressing", "True", "NewReplicaSetCreated",
                               f'Created new replica set "{rs_name}"', stamp)
            elif _find(conditions, "Progressing") is None and new is not None:
                _set_condition(conditions, "Progressing", "True", "FoundNewReplicaSet",
                               f'Found new replica set "{rs_name}"', stamp)
            requeue = self._progress(deployment, status, previous, conditions, rs_name, stamp)
        status["conditions"] = conditions
        status = {k: v for k, v in status.items() if v or k in ("observedGeneration", "conditions")}
        write_status(self.store, self.deployments, deployment, status)
        return requeue

    def _progress(self, deployment: JsonObject, status: dict[str, Any], previous: dict[str, Any],
                  conditions: list[JsonObject], rs_name: str, stamp: str) -> float | None:
        """syncRolloutStatus: complete, progressing (refresh lastUpdateTime), or past the progress deadline."""
        spec = deployment["spec"]
        desired = int(spec.get("replicas", 1))
        current = _find(conditions, "Progressing")
        if current and current.get("reason") == "NewReplicaSetAvailable" and \
                status["replicas"] == status["updatedReplicas"]:
            return None
        complete = (status["updatedReplicas"] == desired and status["replicas"] == desired
                    and status["availableReplicas"] == desired
                    and status["observedGeneration"] >= deployment["metadata"].get("generation", 1))
        old_before = int(previous.get("replicas", 0)) - int(previous.get("updatedReplicas", 0))
        progressing = (status["updatedReplicas"] > int(previous.get("updatedReplicas", 0))
                       or status["replicas"] - status["updatedReplicas"] < old_before
                       or status["readyReplicas"] > int(previous.get("readyReplicas", 0))
                       or status["availableReplicas"] > int(previous.get("availableReplicas", 0)))
        if complete:
            _set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                           f'ReplicaSet "{rs_name}" has successfully progressed.', stamp)
            return None
        if progressing:
            kept = current.get("lastTransitionTime") if current and current.get("status") == "True" else stamp
            conditions[:] = [c for c in conditions if c.get("type") != "Progressing"]
            conditions.append({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                               "message": f'ReplicaSet "{rs_name}" is progressing.', "lastUpdateTime": stamp,
                               "lastTransitionTime": kept})
            current = conditions[-1]
        deadline = spec.get("progressDeadlineSeconds")
        if deadline is None or current is None or current.get("reason") == "ProgressDeadlineExceeded":
            return None
        expires = parse_time(current.get("lastUpdateTime")) + int(deadline)
        if time.time() > expires:
            _set_condition(conditions, "Progressing", "False", "ProgressDeadlineExceeded",
                           f'ReplicaSet "{rs_name}" has timed out progressing.', stamp)
            return None
        return expires - time.time() + 1.0


def _find(conditions: list[JsonObject], kind: str) -> JsonObject | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def _set_condition(conditions: list[JsonObject], kind: str, status: str, reason: str, message: str,
                   stamp: str) -> None:
    """SetDeploymentCondition: same status and reason is no change; same status keeps lastTransitionTime."""
    current = _find(conditions, kind)
    if current and current.get("status") == status and current.get("reason") == reason:
        return
    transition = current["lastTransitionTime"] if current and current.get("status") == status else stamp
    conditions[:] = [c for c in conditions if c.get("type") != kind]
    conditions.append({"type": kind, "status": status, "reason": reason, "message": message,
                       "lastUpdateTime": stamp, "lastTransitionTime": transition})


def sync_deployment(store: Store, namespace: str, name: str) -> float | None:
    return DeploymentSync(store, namespace, name).run()


def deployment_type(store: Store) -> ResourceType:
    return store.registry.resource("apps", "deployments")

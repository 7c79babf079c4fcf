"""The release state persisted in the `weir.dev/state` annotation (JSON).

It is everything the controller needs to resume after a crash: the state machine reads it, returns the
next one, and the reconciler writes it before acting on anything that cannot be repeated.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from typing import Any

from adapters.base import Match, Routing


class Phase(enum.StrEnum):
    INITIALIZING = "Initializing"  # creating primary, Services and routes; apex not switched yet
    IDLE = "Idle"  # primary serves everything; waiting for a template change
    PROGRESSING = "Progressing"  # walking the stages
    PAUSED = "Paused"  # a person paused it: routing held, clocks stopped
    PROMOTING = "Promoting"  # copying the canary into primary, then draining the canary
    ROLLING_BACK = "RollingBack"  # all traffic back to primary, then canary scaled to 0
    ROLLED_BACK = "RolledBack"  # the last release failed; primary still serves the previous version
    INVALID = "Invalid"  # configuration error: traffic on primary, nothing else changes until it is fixed
    FINALIZING = "Finalizing"  # opt-out: handing everything back to the user's Deployment
    DEGRADED = "Degraded"  # a phase overran its deadline and cannot finish: safe, told why, still trying

    def __str__(self) -> str:
        return self.value


ACTIVE_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING, Phase.ROLLING_BACK})
# Phases in which a firing alert rolls the release back (a rollback in progress needs no second one).
ALERTABLE_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING})


@dataclass(frozen=True)
class Revision:
    """A promoted version, kept for `undo` (bounded like the Deployment's revisionHistoryLimit)."""

    number: int
    template_hash: str
    promoted_at: float


@dataclass(frozen=True)
class ReleaseState:
    phase: Phase = Phase.INITIALIZING
    replicas: int = 1  # what the user asked for; primary runs this many, the canary too while releasing
    primary_hash: str | None = None  # template hash that primary runs (after initialization)
    canary_hash: str | None = None  # template hash under release (or last released)
    failed_hash: str | None = None  # a rolled-back template: not released again until changed or retried
    revision: int = 0  # increases by one for every release started
    release_started_at: float | None = None  # when the current release began (canary scale-up)
    canary_ready_at: float | None = None  # when the canary first became ready in this release
    step: int = 0  # index into the flattened steps of all stages
    step_started_at: float | None = None  # when the current step's routing was applied
    paused_at: float | None = None
    weight: int = 0  # the canary weight last written to the router
    matches: tuple[Match, ...] = ()
    stage_name: str = ""
    message: str = ""
    verdict: dict[str, Any] = field(default_factory=dict)  # the latest analysis verdict, for status
    resume_phase: Phase | None = None  # the phase to go back to when an Invalid config is fixed
    blocked_phase: Phase | None = None  # Degraded: the phase that overran its deadline (still being worked)
    phase_started_at: float | None = None  # when the current phase began (its deadline counts from here)
    paused_by: str | None = None  # Paused: "operator" (weir.dev/command) or "deployment" (spec.paused)
    # Promoting: the primary's rollout as last seen, and when it last moved (its deadline counts from there,
    # as Kubernetes' progressDeadlineSeconds does: a large rollout that keeps moving is not stuck).
    progress_mark: str = ""
    progress_at: float | None = None
    history: tuple[Revision, ...] = ()
    # Where traffic is steered, from the last valid configuration: an invalid one must not strand traffic.
    router: str | None = None
    ingress: str | None = None
    gateway_route: str | None = None
    # Write counter. The primary keeps a copy of the state from each phase change; an annotation with a
    # lower `seq` than that copy is an old one written back (kubectl rollout undo copies a ReplicaSet's
    # annotations onto the Deployment) and is not trusted.
    seq: int = 0

    @property
    def routing(self) -> Routing:
        return Routing(self.weight, self.matches)

    def replace(self, **changes: Any) -> ReleaseState:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["phase"] = self.phase.value
        data["resume_phase"] = self.resume_phase.value if self.resume_phase else None
        data["blocked_phase"] = self.blocked_phase.value if self.blocked_phase else None
        data["matches"] = [_drop_none(dataclasses.asdict(m)) for m in self.matches]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ReleaseState:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in known}  # tolerate fields from newer versions
        data["phase"] = Phase(data.get("phase", Phase.INITIALIZING.value))
        for key in ("resume_phase", "blocked_phase"):
            if data.get(key):
                data[key] = Phase(data[key])
        data["matches"] = tuple(Match(**m) for m in data.get("matches", ()))
        data["history"] = tuple(Revision(**r) for r in data.get("history", ()))
        return cls(**data)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def read_state(text: str | None) -> ReleaseState | None:
    """The state in a `weir.dev/state` value; None when absent or unreadable (a hand-edited or corrupt
    state must not wedge anything: what exists is observed again)."""
    if not text:
        return None
    try:
        state = ReleaseState.from_json(text)
    except Exception:  # any malformed JSON shape: the value is not a state Weir wrote
        return None
    return state if isinstance(state.seq, int) else None


def trusted_state(annotated: ReleaseState | None, kept: ReleaseState | None) -> tuple[ReleaseState | None, str]:
    """Which state to resume from: the Deployment's annotation, or the copy kept on the primary when the
    annotation is missing or older than it (written back by `kubectl rollout undo`, or removed by hand
    while Weir's objects exist). Returns the state and, when the copy wins, why."""
    if kept is None:
        return annotated, ""
    if annotated is None:
        return kept, "weir.dev/state was missing while Weir's objects exist"
    if annotated.seq < kept.seq:
        return kept, (f"weir.dev/state was an older copy (write {annotated.seq}, revision {annotated.revision}, "
                      f"{annotated.phase}) than Weir's own record (write {kept.seq}, revision {kept.revision}), "
                      "e.g. written back by kubectl rollout undo")
    return annotated, ""

"""What the reconciler saw, handed to the pure state machine (no I/O happens past this point)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import Observed, RouteRead, Routing, Unreadable
from analysis.model import Verdict
from canary.alerts import Alert
from canary.config import AlertMatcher, Step


@dataclass(frozen=True)
class WorkloadStatus:
    """One Deployment as observed: its spec'd replicas, which template it runs, and how ready it is."""

    exists: bool = True
    spec_replicas: int = 0
    template_hash: str | None = None
    total: int = 0  # status.replicas (old and new pods)
    updated: int = 0
    ready: int = 0
    available: int = 0
    observed: bool = True  # status.observedGeneration caught up with metadata.generation
    paused: bool = False  # spec.paused (`kubectl rollout pause`): the Deployment controller rolls nothing out

    @property
    def rolled_out(self) -> bool:
        """Every wanted pod runs the current template, is available, and no old pod is left."""
        n = self.spec_replicas
        return (self.exists and self.observed and self.updated >= n and self.available >= n
                and self.ready >= n and self.total == n)

    @classmethod
    def from_deployment(cls, deployment: Mapping[str, Any] | None, template_hash: str | None) -> WorkloadStatus:
        if deployment is None:
            return cls(exists=False)
        meta = deployment.get("metadata") or {}
        spec = deployment.get("spec") or {}
        status = deployment.get("status") or {}
        replicas = spec.get("replicas")
        return cls(
            exists=True,
            spec_replicas=1 if replicas is None else int(replicas),
            template_hash=template_hash,
            total=int(status.get("replicas") or 0),
            updated=int(status.get("updatedReplicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            available=int(status.get("availableReplicas") or 0),
            observed=int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0),
            paused=bool(spec.get("paused")),
        )


NOT_READ = Unreadable("no router configured")


@dataclass(frozen=True)
class Observation:
    now: float  # unix seconds: time is an input, the machine never reads a clock
    enabled: bool
    canary: WorkloadStatus  # the user's Deployment `<name>`
    primary: WorkloadStatus  # `<name>-primary` (exists=False before initialization)
    steps: tuple[Step, ...] = ()
    deadline_seconds: float = 600.0
    config_error: str | None = None  # a ConfigError's text: field path and fix
    routing: RouteRead = NOT_READ  # read back from the router, as seen
    verdict: Verdict | None = None  # the judge's combined verdict for the current step, if asked
    command: str | None = None  # the pending `weir.dev/command`
    alerts: tuple[Alert, ...] = ()  # firing alerts the webhook recorded on the Deployment
    alert_rules: tuple[tuple[AlertMatcher, ...], ...] = ()  # `rollback-on-alerts` (none: every alert counts)
    name: str = ""  # the Deployment's name, for messages


def on_primary_only(read: RouteRead) -> bool:
    """Seen, not assumed: the router reads back no canary weight and no canary match."""
    return isinstance(read, Observed) and read.routing.canary_weight == 0 and not read.routing.matches


def may_send_to_canary(read: RouteRead) -> bool:
    """Anything but a read-back of primary-only (or objects that are not there at all) may be sending
    traffic to the canary."""
    if isinstance(read, Observed):
        return read.routing.canary_weight > 0 or bool(read.routing.matches)
    return isinstance(read, Unreadable)


def routes_as(read: RouteRead, routing: Routing) -> bool:
    return isinstance(read, Observed) and read.routing == routing

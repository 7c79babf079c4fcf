"""What the state machine asks the reconciler to do. Every action is idempotent: repeating one after a
crash leaves the world as one execution would."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.base import Routing


@dataclass(frozen=True)
class EnsurePrimary:
    """Create or update `<name>-primary` to run the template with `template_hash` at `replicas`."""

    template_hash: str
    replicas: int


@dataclass(frozen=True)
class ScaleCanary:
    """Set the user's Deployment (the canary) to `replicas`."""

    replicas: int


@dataclass(frozen=True)
class EnsureRoutes:
    """Create the router's objects (Services, canary Ingress/route) with all traffic on primary. `repair`:
    some were there and went missing (each one re-created gets an Event)."""

    repair: bool = False


@dataclass(frozen=True)
class SetRouting:
    routing: Routing


@dataclass(frozen=True)
class FinalizeRoutes:
    """Send all traffic back to the user's own pods and delete the router's objects."""


@dataclass(frozen=True)
class DeletePrimary:
    pass


@dataclass(frozen=True)
class ForgetRelease:
    """Opt-out finished: remove `weir.dev/state` from the Deployment."""


@dataclass(frozen=True)
class RecordRevision:
    """Keep the template of promoted revision `number` (for `undo`)."""

    number: int
    template_hash: str


@dataclass(frozen=True)
class RestoreTemplate:
    """Write the kept template of revision `number` back into the user's Deployment: `undo`. What
    follows is an ordinary progressive release of that template."""

    number: int
    template_hash: str


@dataclass(frozen=True)
class Emit:
    """A Kubernetes Event on the Deployment (type Normal or Warning)."""

    reason: str
    message: str
    warning: bool = False


Action = (EnsurePrimary | ScaleCanary | EnsureRoutes | SetRouting | FinalizeRoutes | DeletePrimary | ForgetRelease
          | RecordRevision | RestoreTemplate)


def describe(action: Action) -> tuple[str, str]:
    """(reason, message) of the Event that records an executed action."""
    if isinstance(action, EnsurePrimary):
        return "PrimaryUpdated", f"primary set to template {action.template_hash} with {action.replicas} replicas"
    if isinstance(action, ScaleCanary):
        return "CanaryScaled", f"canary scaled to {action.replicas} replicas"
    if isinstance(action, EnsureRoutes):
        return "RoutesEnsured", "primary and canary routes in place, all traffic on primary"
    if isinstance(action, SetRouting):
        r = action.routing
        rules = ", ".join(f"{m.header or m.cookie}" for m in r.matches)
        return "TrafficShifted", f"canary weight {r.canary_weight}%" + (f", matches: {rules}" if rules else "")
    if isinstance(action, FinalizeRoutes):
        return "RoutesRemoved", "traffic handed back to the Deployment's own pods"
    if isinstance(action, DeletePrimary):
        return "PrimaryDeleted", "primary Deployment deleted"
    if isinstance(action, RecordRevision):
        return "RevisionRecorded", f"revision {action.number} ({action.template_hash}) kept for undo"
    if isinstance(action, RestoreTemplate):
        return "UndoStarted", f"template of revision {action.number} ({action.template_hash}) restored; releasing it"
    return "Released", "Weir no longer manages this Deployment"

"""A pure, instant stand-in for the cluster, to drive the state machine through whole releases in tests.

It applies the machine's actions the way the reconciler would and records every change, so tests can
assert ordering and safety invariants over the whole history.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from adapters.base import Missing, Observed, RouteRead, Routing, Unreadable
from analysis.model import Outcome, Verdict
from canary.actions import (
    Action,
    DeletePrimary,
    EnsurePrimary,
    EnsureRoutes,
    FinalizeRoutes,
    ForgetRelease,
    RecordRevision,
    RestoreTemplate,
    ScaleCanary,
    SetRouting,
)
from canary.alerts import Alert
from canary.config import Step, default_stages, flatten
from canary.machine import Decision, decide
from canary.observation import Observation, WorkloadStatus
from canary.state import ReleaseState


def sends_to_canary(routing: Routing | None) -> bool:
    return routing is not None and (routing.canary_weight > 0 or bool(routing.matches))


@dataclass
class World:
    user_hash: str = "v1"
    user_replicas: int = 3
    canary_ready: int = 3  # ready pods of the user's Deployment (when scaled)
    canary_can_be_ready: bool = True
    primary_hash: str | None = None
    primary_replicas: int = 0
    primary_ready: int = 0
    routing: Routing | None = None  # what the data plane does (None: the router's objects are not there)
    router_readable: bool = True  # False: reads are Unreadable and writes to the router fail
    primary_delay: float = 0.0  # seconds a primary update takes to become ready (a slow primary)
    primary_ready_at: float = 0.0
    primary_old_ready: int = 0  # pods of the previous primary template still serving during its update
    primary_pending: bool = False  # a primary template update not finished yet
    canary_paused: bool = False
    primary_paused: bool = False
    enabled: bool = True
    now: float = 1000.0
    steps: tuple[Step, ...] = field(default_factory=lambda: flatten(default_stages("nginx")))
    deadline: float = 600.0
    verdict: Outcome | None = Outcome.PASS
    command: str | None = None
    alerts: tuple[Alert, ...] = ()
    config_error: str | None = None
    state: ReleaseState | None = None
    forgotten: bool = False
    kept: dict[int, str] = field(default_factory=dict)  # revision -> template hash (the revision store)
    log: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def primary_updated(self) -> bool:
        """A primary update finishes after `primary_delay`, and not while the primary is paused (a paused
        Deployment with no update pending keeps serving)."""
        if self.primary_pending and (self.now < self.primary_ready_at or self.primary_paused):
            return False
        self.primary_pending = False
        return True

    def primary_serving(self) -> int:
        """Ready primary pods: the new template's once its update is done, the old ones meanwhile."""
        if self.primary_hash is None:
            return 0
        return self.primary_ready if self.primary_updated() else self.primary_old_ready

    def read(self) -> RouteRead:
        if not self.router_readable:
            return Unreadable("connection refused")
        if self.routing is None:
            return Missing("Ingress web-canary")
        return Observed(self.routing)

    def observe(self) -> Observation:
        canary = WorkloadStatus(spec_replicas=self.user_replicas, template_hash=self.user_hash,
                                total=self.user_replicas, updated=self.user_replicas,
                                ready=min(self.canary_ready, self.user_replicas),
                                available=min(self.canary_ready, self.user_replicas), paused=self.canary_paused)
        updating = not self.primary_updated()
        ready = self.primary_serving()
        primary = (WorkloadStatus(exists=False) if self.primary_hash is None else WorkloadStatus(
            spec_replicas=self.primary_replicas, template_hash=self.primary_hash, total=self.primary_replicas,
            updated=0 if updating else self.primary_replicas, ready=ready, available=ready,
            paused=self.primary_paused))
        verdict = None if self.verdict is None else Verdict(self.verdict, "all", f"judge says {self.verdict}")
        return Observation(now=self.now, enabled=self.enabled, canary=canary, primary=primary, steps=self.steps,
                           deadline_seconds=self.deadline, config_error=self.config_error, routing=self.read(),
                           verdict=verdict, command=self.command, alerts=self.alerts, name="web")

    def apply(self, action: Action) -> bool:
        """Carry out one action as the reconciler would; False when it failed (the rest of the decision's
        actions then do not run, as an exception stops the reconciler)."""
        if isinstance(action, EnsureRoutes | SetRouting | FinalizeRoutes) and not self.router_readable:
            self.log.append(f"failed {type(action).__name__}")
            return False
        self.actions.append(action)
        if isinstance(action, EnsurePrimary):
            if action.template_hash != self.primary_hash:
                # A rolling update keeps the old pods serving until the new ones are ready.
                self.primary_old_ready = self.primary_serving()
                self.primary_ready_at = self.now + self.primary_delay
                self.primary_pending = True
            self.primary_hash = action.template_hash
            self.primary_replicas = action.replicas
            self.primary_ready = action.replicas
        elif isinstance(action, ScaleCanary):
            if action.replicas == 0 and not (self.routing is not None and not sends_to_canary(self.routing)
                                             and self.router_readable):
                self.violations.append(f"canary scaled down without a read-back of primary-only ({self.read()})")
            self.user_replicas = action.replicas
            self.canary_ready = action.replicas if self.canary_can_be_ready else 0
        elif isinstance(action, EnsureRoutes):
            self.routing = self.routing or Routing()
        elif isinstance(action, SetRouting):
            self.routing = action.routing
        elif isinstance(action, FinalizeRoutes):
            self.routing = None
        elif isinstance(action, DeletePrimary):
            self.primary_hash = None
            self.primary_replicas = self.primary_ready = 0
        elif isinstance(action, ForgetRelease):
            self.forgotten = True
        elif isinstance(action, RecordRevision):
            self.kept[action.number] = action.template_hash
        elif isinstance(action, RestoreTemplate):
            assert self.kept.get(action.number) == action.template_hash, "restoring a revision never kept"
            self.user_hash = action.template_hash
        self.log.append(type(action).__name__)
        self.check_invariants(action)
        return True

    def check_invariants(self, action: Action) -> None:
        canary_serving = min(self.canary_ready, self.user_replicas)
        if sends_to_canary(self.routing) and canary_serving == 0:
            self.violations.append(f"traffic on a canary with no ready pod after {action}")
        if self.routing is not None and self.routing.canary_weight < 100 and self.primary_hash and \
                self.primary_serving() == 0 and self.state is not None and canary_serving > 0:
            self.violations.append(f"traffic on a primary with no ready pod while the canary has some, after {action}")

    def step(self) -> Decision:
        before = self.state
        decision = decide(self.state, self.observe())
        if decision.command_consumed:
            self.command = None
        if decision.alerts_consumed:
            self.alerts = ()
        self.events.extend(e.reason for e in decision.events)
        self.state = decision.state
        if self.state is not None and before is not None and self.state.phase is not before.phase and \
                self.state.primary_hash != before.primary_hash and not (
                    self.routing is not None and not sends_to_canary(self.routing)):
            self.violations.append(f"promoted to {self.state.primary_hash} without all traffic on primary")
        for action in decision.actions:
            if not self.apply(action):
                break
        return decision

    def run(self, seconds: float, tick: float = 1.0) -> None:
        end = self.now + seconds
        while self.now < end:
            self.step()
            self.now += tick

    def settle(self, limit: int = 50) -> None:
        """Step without the clock moving until nothing changes."""
        for _ in range(limit):
            before = (self.state, self.routing, self.user_replicas, self.primary_hash)
            self.step()
            if (self.state, self.routing, self.user_replicas, self.primary_hash) == before:
                return

    def with_steps(self, *weights: int, hold: float = 10.0) -> World:
        return replace(self, steps=tuple(Step(Routing(w), hold, f"canary {w}%") for w in weights))

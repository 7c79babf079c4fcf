"""A pure, instant stand-in for the cluster, to drive the state machine through whole releases in tests.

It applies the machine's actions the way the reconciler would and records every change, so tests can
assert ordering and safety invariants over the whole history.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from adapters.base import Routing
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
from canary.config import Step, default_stages, flatten
from canary.machine import Decision, decide, sends_to_canary
from canary.observation import Observation, WorkloadStatus
from canary.state import ReleaseState


@dataclass
class World:
    user_hash: str = "v1"
    user_replicas: int = 3
    canary_ready: int = 3  # ready pods of the user's Deployment (when scaled)
    canary_can_be_ready: bool = True
    primary_hash: str | None = None
    primary_replicas: int = 0
    primary_ready: int = 0
    routing: Routing | None = None
    enabled: bool = True
    now: float = 1000.0
    steps: tuple[Step, ...] = field(default_factory=lambda: flatten(default_stages("nginx")))
    deadline: float = 600.0
    verdict: Outcome | None = Outcome.PASS
    command: str | None = None
    alert: str | None = None
    config_error: str | None = None
    state: ReleaseState | None = None
    forgotten: bool = False
    kept: dict[int, str] = field(default_factory=dict)  # revision -> template hash (the revision store)
    log: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def observe(self) -> Observation:
        canary = WorkloadStatus(spec_replicas=self.user_replicas, template_hash=self.user_hash,
                                total=self.user_replicas, updated=self.user_replicas,
                                ready=min(self.canary_ready, self.user_replicas),
                                available=min(self.canary_ready, self.user_replicas))
        primary = (WorkloadStatus(exists=False) if self.primary_hash is None else WorkloadStatus(
            spec_replicas=self.primary_replicas, template_hash=self.primary_hash, total=self.primary_replicas,
            updated=self.primary_replicas, ready=self.primary_ready, available=self.primary_ready))
        verdict = None if self.verdict is None else Verdict(self.verdict, "all", f"judge says {self.verdict}")
        return Observation(now=self.now, enabled=self.enabled, canary=canary, primary=primary, steps=self.steps,
                           deadline_seconds=self.deadline, config_error=self.config_error, routing=self.routing,
                           verdict=verdict, command=self.command, alert=self.alert)

    def apply(self, action: Action) -> None:
        self.actions.append(action)
        if isinstance(action, EnsurePrimary):
            self.primary_hash = action.template_hash
            self.primary_replicas = action.replicas
            self.primary_ready = action.replicas
        elif isinstance(action, ScaleCanary):
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

    def check_invariants(self, action: Action) -> None:
        canary_serving = min(self.canary_ready, self.user_replicas)
        if sends_to_canary(self.routing) and canary_serving == 0:
            self.violations.append(f"traffic on a canary with no ready pod after {action}")
        if self.routing is not None and not sends_to_canary(self.routing) and self.primary_hash and \
                self.primary_ready == 0 and self.state is not None:
            self.violations.append(f"traffic on a primary with no ready pod after {action}")

    def step(self) -> Decision:
        decision = decide(self.state, self.observe())
        if decision.command_consumed:
            self.command = None
        self.events.extend(e.reason for e in decision.events)
        self.state = decision.state
        for action in decision.actions:
            self.apply(action)
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

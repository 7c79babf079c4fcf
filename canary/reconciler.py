"""The reconciler: observe, ask the pure machine, persist, act. One call handles one Deployment.

Order within a call (the crash-safety argument):
1. read the Deployment, primary and routes; ask the judge; build an Observation;
2. `decide` returns the next state and the actions still missing for the world to match it;
3. transition Events are recorded (names derived from the decision, so a repeat is not a duplicate);
4. the new state is persisted, conditional on the resourceVersion read in 1 (a stale decision is dropped);
5. the actions run in order, each idempotent, each leaving an Event.
A crash anywhere leaves either the old state (and 1-2 decide the same again) or the new state with some
actions not yet done (and 1-2 derive exactly those again from what is observed).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from adapters import RouterError, canonical, detect_router, make_router
from adapters.backends import Backends
from adapters.base import Route, Router, Routing
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
    describe,
)
from canary.alerts import AlertBook
from canary.annotations import COMMAND, COMMANDS, ENABLED, ROLLOUT, STATE
from canary.config import ConfigError, RolloutSpec, Step, flatten, parse_rollout
from canary.judging import Judge, ReadinessJudge, ReleaseWindow
from canary.kube import Cluster, Conflict
from canary.machine import HISTORY_LIMIT, Decision, decide
from canary.observation import Observation, WorkloadStatus
from canary.revisions import RevisionStore
from canary.state import ACTIVE_PHASES, Phase, ReleaseState
from canary.warnings import release_warnings
from canary.workload import (
    build_primary,
    build_route,
    primary_name,
    primary_template_hash,
    progress_deadline,
    selector_labels,
    template_hash,
)

log = logging.getLogger("weir.reconciler")

CRASH_AFTER_ENV = "WEIR_CRASH_AFTER_ACTIONS"  # fault injection for the crash-safety tests
CHECK_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class Outcome:
    """What one reconcile did, for the work queue and for metrics."""

    phase: str | None
    actions: int
    requeue_after: float | None
    active: bool
    analysis_interval: float | None = None


@dataclass(frozen=True)
class _Setup:
    spec: RolloutSpec
    router_kind: str
    router: Router
    route: Route
    steps: tuple[Step, ...]


class Reconciler:
    def __init__(self, api: ApiClient, judge: Judge | None = None, alerts: AlertBook | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cluster = Cluster(api)
        self.backends = Backends(api)
        self.revisions = RevisionStore(api)
        self.api = api
        self.judge = judge or ReadinessJudge()
        self.alerts = alerts or AlertBook()
        self.clock = clock
        self._executed = 0
        self._routers: dict[str, Router] = {}
        self._checked: dict[tuple[str, str], tuple[float, str, str]] = {}
        crash_after = os.environ.get(CRASH_AFTER_ENV)
        self._crash_after = int(crash_after) if crash_after else None

    # --- the loop body ------------------------------------------------------------------------------

    def reconcile(self, namespace: str, name: str) -> Outcome:
        deployment = self.cluster.get_deployment(namespace, name)
        if deployment is None:
            self.alerts.clear(namespace, name)
            self.judge.forget(namespace, name)
            return Outcome(None, 0, None, False)
        annotations = deployment["metadata"].get("annotations") or {}
        enabled = annotations.get(ENABLED, "").strip().lower() == "true"
        state = _load_state(annotations.get(STATE))
        if not enabled and state is None:
            return Outcome(None, 0, None, False)

        setup, error = self._setup(deployment, state)
        primary = self.cluster.get_deployment(namespace, primary_name(name))
        observation = self._observe(deployment, primary, state, setup, error, enabled)
        decision = decide(state, observation)
        self._record(deployment, state, decision)
        executed = self._persist_and_act(deployment, state, decision, setup)
        new_state = decision.state
        if new_state is None or new_state.phase not in ACTIVE_PHASES:
            self.alerts.clear(namespace, name)
        if new_state is None or new_state.phase not in (Phase.PROGRESSING, Phase.PAUSED):
            self.judge.forget(namespace, name)
        requeue = decision.requeue_after
        if executed:
            requeue = 0.0  # observe the effect of what was just done
        log.info("reconciled", extra={"namespace": namespace, "deployment": name,
                                      "phase": new_state.phase.value if new_state else None,
                                      "detail": new_state.message if new_state else "", "actions": executed})
        interval = setup.spec.analysis.interval_seconds if setup else None
        return Outcome(new_state.phase.value if new_state else None, executed, requeue,
                       new_state is not None and new_state.phase in ACTIVE_PHASES, interval)

    # --- observe ------------------------------------------------------------------------------------

    def _setup(self, deployment: dict[str, Any], state: ReleaseState | None) -> tuple[_Setup | None, str | None]:
        meta = deployment["metadata"]
        kind = "?"
        try:
            spec = parse_rollout(meta.get("annotations"))
            selector_labels(deployment)
            kind = spec.router or detect_router(self.api, meta["namespace"], meta["name"])
            router = self._router(kind)
            route = build_route(deployment, spec.ingress, spec.route)
            if self._needs_check(deployment, state, kind):
                router.check(route)
                self._checked[(meta["namespace"], meta["name"])] = (self.clock(), _config_text(deployment), kind)
            stages = spec.stages_for(kind)
            for stage in stages:
                for step in stage.steps:
                    if not router.supports(step.routing):
                        raise ConfigError(
                            f"weir.dev/rollout.{stage.path.removeprefix('weir.dev/rollout.')}",
                            f"router {kind} cannot route {step.label!r}",
                            "use router nginx (or gateway/istio) for partial weights and matches, "
                            "or blue-green stages with router service")
            steps = tuple(replace(step, routing=canonical(step.routing)) for step in flatten(stages))
            return _Setup(spec, kind, router, route, steps), None
        except ConfigError as exc:
            return None, str(exc)
        except RouterError as exc:
            return None, f"weir.dev/rollout.{exc.field}: {exc.message}. Fix: {exc.fix}"
        except ApiException as exc:
            if exc.status not in (403, 404):
                raise
            # The router's API (a CRD such as HTTPRoute or VirtualService) is not served here.
            return None, (f"weir.dev/rollout.router: router {kind!r} needs an API this cluster does not serve "
                          f"({exc.status} {exc.reason}). Fix: install that provider's CRDs, or use one of: "
                          "service, nginx")

    def _router(self, kind: str) -> Router:
        """Routers are kept for the controller's life: they hold no per-release state."""
        router = self._routers.get(kind)
        if router is None:
            router = self._routers[kind] = make_router(kind, self.api)
        return router

    def _needs_check(self, deployment: dict[str, Any], state: ReleaseState | None, kind: str) -> bool:
        """`check` reads several objects; between releases it is enough to re-run it when the
        configuration changes, the state is not settled, or every CHECK_EVERY_SECONDS."""
        meta = deployment["metadata"]
        last = self._checked.get((meta["namespace"], meta["name"]))
        if state is None or state.phase in (Phase.INITIALIZING, Phase.INVALID) or last is None:
            return True
        checked_at, text, checked_kind = last
        return text != _config_text(deployment) or checked_kind != kind or \
            self.clock() - checked_at > CHECK_EVERY_SECONDS

    def _observe(self, deployment: dict[str, Any], primary: dict[str, Any] | None, state: ReleaseState | None,
                 setup: _Setup | None, error: str | None, enabled: bool) -> Observation:
        meta = deployment["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        now = self.clock()
        canary = WorkloadStatus.from_deployment(deployment, template_hash(deployment))
        primary_status = WorkloadStatus.from_deployment(primary, primary_template_hash(primary))
        routing = self._read_routing(setup) if setup else None
        command = (meta.get("annotations") or {}).get(COMMAND)
        if command is not None:
            command = command.strip()
            if not is_command(command):
                log.warning("unknown command ignored", extra={"deployment": name, "command": command})
                command = None
        verdict = None
        if setup and state and state.phase is Phase.PROGRESSING and state.step_started_at is not None \
                and state.canary_ready_at is not None and not error:
            window = ReleaseWindow(namespace, name, primary_name(name), name, state.revision,
                                   state.canary_ready_at, setup.router_kind)
            verdict = self.judge.verdict(window, setup.spec.analysis, now)
        deadline = progress_deadline(deployment, setup.spec.progress_deadline_seconds if setup else None)
        return Observation(
            now=now, enabled=enabled, canary=canary, primary=primary_status,
            steps=setup.steps if setup else (), deadline_seconds=deadline, config_error=error, routing=routing,
            verdict=verdict, command=command,
            alert=self.alerts.get(namespace, name),
        )

    def _read_routing(self, setup: _Setup) -> Routing | None:
        """What the router has now; None when its objects are not (all) in place, so the machine
        (re-)ensures them before anything depends on them."""
        try:
            if not self._backends_in_place(setup.route):
                return None
            return canonical(setup.router.read(setup.route))
        except (RouterError, ApiException) as exc:
            log.info("routes not readable yet", extra={"deployment": setup.route.name, "reason": str(exc)})
            return None

    def _backends_in_place(self, route: Route) -> bool:
        """The Services every router relies on exist, and the apex selects one of the two arms."""
        for name in (route.primary_service, route.canary_service):
            if self.backends.apex_selector(replace(route, name=name)) is None:
                return False
        selector = self.backends.apex_selector(route)
        return selector in (dict(route.primary_selector), dict(route.canary_selector))

    # --- record, persist, act -----------------------------------------------------------------------

    def _record(self, deployment: dict[str, Any], state: ReleaseState | None, decision: Decision) -> None:
        revision = decision.state.revision if decision.state else (state.revision if state else 0)
        for event in decision.events:
            self.cluster.emit(deployment, event.reason, event.message, event.warning, dedupe_key=f"r{revision}")
            if event.reason in ("Initialized", "ReleaseStarted"):
                for warning in release_warnings(deployment):
                    self.cluster.emit(deployment, "UnsafeRelease", warning, warning=True, dedupe_key=f"r{revision}")

    def _persist_and_act(self, deployment: dict[str, Any], state: ReleaseState | None, decision: Decision,
                         setup: _Setup | None) -> int:
        new_state = decision.state
        if new_state is not None and (new_state != state or decision.command_consumed):
            changes: dict[str, str | None] = {STATE: new_state.to_json()}
            if decision.command_consumed:
                changes[COMMAND] = None
            deployment = self.cluster.write_annotations(deployment, changes)  # Conflict: decide again
        executed = 0
        for action in decision.actions:
            if self._execute(action, deployment, new_state, setup):
                executed += 1
                reason, message = describe(action)
                revision = new_state.revision if new_state else 0
                self.cluster.emit(deployment, reason, message, dedupe_key=f"r{revision}|{action!r}")
                self._count_for_crash_test()
        return executed

    def _execute(self, action: Action, deployment: dict[str, Any], state: ReleaseState | None,
                 setup: _Setup | None) -> bool:
        """Run one action; False when there was nothing to do (already in place)."""
        meta = deployment["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        if isinstance(action, ScaleCanary):
            if (deployment.get("spec") or {}).get("replicas") == action.replicas:
                return False
            self.cluster.scale(namespace, name, action.replicas)
            return True
        if isinstance(action, EnsurePrimary):
            return self._ensure_primary(deployment, action)
        if isinstance(action, DeletePrimary):
            return self.cluster.delete_deployment(namespace, primary_name(name))
        if isinstance(action, ForgetRelease):
            current = self.cluster.get_deployment(namespace, name)
            if current is not None:
                self.cluster.write_annotations(current, {STATE: None, COMMAND: None})
            return True
        if isinstance(action, RecordRevision):
            if template_hash(deployment) != action.template_hash:
                log.warning("revision template changed before it was kept; undo cannot return to it",
                            extra={"deployment": name, "revision": action.number})
                return False
            template = (deployment.get("spec") or {}).get("template") or {}
            self.revisions.record(deployment, action.number, action.template_hash, template, HISTORY_LIMIT)
            return True
        if isinstance(action, RestoreTemplate):
            return self._restore(deployment, action)
        if setup is None:
            raise RuntimeError(f"{type(action).__name__} needs a valid router configuration")
        if isinstance(action, EnsureRoutes):
            setup.router.ensure(setup.route)
            return True
        if isinstance(action, SetRouting):
            wanted = canonical(action.routing)
            routed = self._read_routing(setup)
            if routed == wanted:
                return False
            if routed is None:
                setup.router.ensure(setup.route)
            setup.router.set(setup.route, wanted)
            seen = self._read_routing(setup)
            if seen != wanted:  # verify what the data plane really has before anything depends on it
                raise RuntimeError(f"router {setup.router_kind} reads back {seen} after setting {wanted}")
            return True
        if isinstance(action, FinalizeRoutes):
            setup.router.finalize(setup.route)
            return True
        raise TypeError(f"unknown action {action!r}")

    def _restore(self, deployment: dict[str, Any], action: RestoreTemplate) -> bool:
        meta = deployment["metadata"]
        kept = self.revisions.get(meta["namespace"], meta["name"], action.number)
        if kept is None or kept[0] != action.template_hash:
            self.cluster.emit(deployment, "UndoRefused", f"the template of revision {action.number} is not kept "
                              "any more", warning=True, dedupe_key=f"undo{action.number}")
            return False
        if template_hash(deployment) == action.template_hash:
            return False
        self.cluster.replace_template(deployment, kept[1])
        return True

    def _ensure_primary(self, deployment: dict[str, Any], action: EnsurePrimary) -> bool:
        meta = deployment["metadata"]
        existing = self.cluster.get_deployment(meta["namespace"], primary_name(meta["name"]))
        if existing is not None and primary_template_hash(existing) == action.template_hash:
            if (existing.get("spec") or {}).get("replicas") == action.replicas:
                return False
            self.cluster.scale(meta["namespace"], primary_name(meta["name"]), action.replicas)
            return True
        if template_hash(deployment) != action.template_hash:
            # The user's template moved on; the machine will decide again from the new observation.
            log.info("primary template not available", extra={"deployment": meta["name"]})
            return False
        wanted = build_primary(deployment, action.replicas)
        if existing is None:
            self.cluster.create_deployment(wanted)
        else:
            wanted["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            self.cluster.replace_deployment(wanted)
        return True

    def _count_for_crash_test(self) -> None:
        self._executed += 1
        if self._crash_after is not None and self._executed >= self._crash_after:
            log.warning("fault injection: SIGKILL after action", extra={"actions": self._executed})
            os.kill(os.getpid(), signal.SIGKILL)


def is_command(text: str) -> bool:
    return text in COMMANDS or re.fullmatch(r"undo:\d+", text) is not None


def _config_text(deployment: dict[str, Any]) -> str:
    return str((deployment["metadata"].get("annotations") or {}).get(ROLLOUT, ""))


def _load_state(text: str | None) -> ReleaseState | None:
    if not text:
        return None
    try:
        return ReleaseState.from_json(text)
    except (ValueError, TypeError, KeyError) as exc:
        # A hand-edited or corrupt state must not wedge the controller: start over from what exists.
        log.warning("unreadable weir.dev/state; starting from scratch", extra={"error": str(exc)})
        return None


__all__ = ["Conflict", "Outcome", "Reconciler"]

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

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from adapters.base import Missing, Observed, Route, Router, RouterError, Unreadable
from adapters.factory import detect_router, make_router
from adapters.kube import ObjectCache
from adapters.routing import canonical
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
from canary.annotated import Annotated, read_annotations
from canary.annotations import ALERTS, COMMAND, PART_OF_LABEL, ROLLOUT, STATE
from canary.config import ConfigError, RolloutSpec, Step, flatten
from canary.judging import Judge, ReadinessJudge, ReleaseWindow
from canary.kube import Cluster, Conflict
from canary.machine import HISTORY_LIMIT, Decision, decide
from canary.observation import Observation, WorkloadStatus
from canary.revisions import RevisionStore
from canary.state import ACTIVE_PHASES, Phase, ReleaseState, read_state, trusted_state
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

CHECK_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class Outcome:
    """What one reconcile did, for the work queue and for metrics."""

    phase: str | None
    actions: int
    requeue_after: float | None
    active: bool
    analysis_interval: float | None = None
    deadline_wake: bool = False  # the requeue is a deadline's time (safety work), not a routine step


@dataclass(frozen=True)
class _Setup:
    spec: RolloutSpec
    router_kind: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class _Routes:
    """The router steering this release and the route it steers: from the valid configuration, or the
    one remembered in the state when the configuration is invalid (traffic must still be movable)."""

    kind: str
    router: Router
    route: Route


@dataclass(frozen=True)
class _Act:
    """What an action handler works with."""

    deployment: dict[str, Any]
    state: ReleaseState | None
    routes: _Routes | None


class Reconciler:
    def __init__(self, api: ApiClient, judge: Judge | None = None, clock: Callable[[], float] = time.time,
                 after_action: Callable[[], None] | None = None, cache: ObjectCache | None = None,
                 background_events: bool = False) -> None:
        self.cache = cache  # watch-fed objects (canary.store.Store): reads come from it, not the API
        self.cluster = Cluster(api, cache=cache, background_events=background_events)
        self.revisions = RevisionStore(api, cache)
        self.api = api
        self.judge = judge or ReadinessJudge()
        self.clock = clock
        self.after_action = after_action  # a hook run after every executed action (fault injection in tests)
        self._routers: dict[str, Router] = {}
        self._checked: dict[tuple[str, str], tuple[float, str, str]] = {}
        self._detected: dict[tuple[str, str], str] = {}
        self._handlers: dict[type, Callable[[Any, _Act], bool]] = {
            ScaleCanary: self._scale_canary,
            EnsurePrimary: self._ensure_primary,
            DeletePrimary: self._delete_primary,
            ForgetRelease: self._forget_release,
            RecordRevision: self._record_revision,
            RestoreTemplate: self._restore,
            EnsureRoutes: self._ensure_routes,
            SetRouting: self._set_routing,
            FinalizeRoutes: self._finalize_routes,
        }

    # --- the loop body ------------------------------------------------------------------------------

    def reconcile(self, namespace: str, name: str) -> Outcome:
        deployment = self.cluster.get_deployment(namespace, name)
        if deployment is None:
            self.judge.forget(namespace, name)
            self._checked.pop((namespace, name), None)
            self._detected.pop((namespace, name), None)
            return Outcome(None, 0, None, False)
        annotated = read_annotations(deployment)
        primary = self.cluster.get_deployment(namespace, primary_name(name))
        state, restored_why = trusted_state(annotated.state, _kept_state(primary, name))
        if not annotated.enabled and state is None:
            return Outcome(None, 0, None, False)
        if restored_why:
            log.warning("state restored from the primary's copy", extra={"deployment": name, "reason": restored_why})
            self.cluster.emit(deployment, "StateRestored", f"{restored_why}; resuming from Weir's own record",
                              warning=True, dedupe_key=f"restore{state.seq if state else 0}")
        if annotated.unknown_command:
            log.warning("unknown command ignored", extra={"deployment": name, "command": annotated.unknown_command})

        setup, error = self._setup(deployment, annotated, state)
        routes = self._routes(deployment, setup, state)
        observation = self._observe(deployment, primary, annotated, state, setup, routes, error)
        decision = decide(state, observation)
        self._record(deployment, state, decision)
        executed = self._persist_and_act(deployment, primary, state, decision, routes, setup,
                                         force_write=bool(restored_why))
        new_state = decision.state
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
                       new_state is not None and new_state.phase in ACTIVE_PHASES, interval, decision.deadline_wake)

    # --- observe ------------------------------------------------------------------------------------

    def _setup(self, deployment: dict[str, Any], annotated: Annotated,
               state: ReleaseState | None) -> tuple[_Setup | None, str | None]:
        meta = deployment["metadata"]
        if annotated.spec is None:
            return None, annotated.config_error
        spec = annotated.spec
        kind = "?"
        try:
            selector_labels(deployment)
            kind = spec.router or self._detect(deployment, state)
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
            problem = self.judge.config_error(spec.analysis, meta["namespace"], meta["name"])
            if problem is not None:
                return None, problem
            steps = tuple(replace(step, routing=canonical(step.routing)) for step in flatten(stages))
            return _Setup(spec, kind, steps), None
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

    def _routes(self, deployment: dict[str, Any], setup: _Setup | None, state: ReleaseState | None) -> _Routes | None:
        """The router of the valid configuration, else the one this release last used."""
        if setup is not None:
            kind, ingress, gateway_route = setup.router_kind, setup.spec.ingress, setup.spec.route
        elif state is not None and state.router:
            kind, ingress, gateway_route = state.router, state.ingress, state.gateway_route
        else:
            return None
        try:
            return _Routes(kind, self._router(kind), build_route(deployment, ingress, gateway_route))
        except (ConfigError, RouterError):
            return None

    def _detect(self, deployment: dict[str, Any], state: ReleaseState | None) -> str:
        """The router found by looking at what routes to the Deployment's Service; looked for again only
        when `check` would run (detection lists objects, some of kinds the cache may not hold)."""
        meta = deployment["metadata"]
        key = (meta["namespace"], meta["name"])
        last = self._detected.get(key)
        if last is not None and not self._needs_check(deployment, state, last):
            return last
        kind = self._detected[key] = detect_router(self.api, meta["namespace"], meta["name"], self.cache)
        return kind

    def _router(self, kind: str) -> Router:
        """Routers are kept for the controller's life: they hold no per-release state."""
        router = self._routers.get(kind)
        if router is None:
            router = self._routers[kind] = make_router(kind, self.api, self.cache)
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

    def _observe(self, deployment: dict[str, Any], primary: dict[str, Any] | None, annotated: Annotated,
                 state: ReleaseState | None, setup: _Setup | None, routes: _Routes | None,
                 error: str | None) -> Observation:
        meta = deployment["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        now = self.clock()
        canary = WorkloadStatus.from_deployment(deployment, template_hash(deployment))
        primary_status = WorkloadStatus.from_deployment(primary, primary_template_hash(primary))
        routing = _read(routes) if routes else Unreadable("no router: the configuration is invalid")
        verdict = None
        if setup and state and state.phase is Phase.PROGRESSING and state.step_started_at is not None \
                and state.canary_ready_at is not None and not error:
            window = ReleaseWindow(namespace, name, primary_name(name), name, state.revision,
                                   state.canary_ready_at, setup.router_kind)
            verdict = self.judge.verdict(window, setup.spec.analysis, now)
        deadline = progress_deadline(deployment, setup.spec.progress_deadline_seconds if setup else None)
        return Observation(
            now=now, enabled=annotated.enabled, canary=canary, primary=primary_status,
            steps=setup.steps if setup else (), deadline_seconds=deadline, config_error=error, routing=routing,
            verdict=verdict, command=annotated.command, alerts=annotated.alerts,
            alert_rules=setup.spec.rollback_on_alerts if setup else (), name=name,
        )

    # --- record, persist, act -----------------------------------------------------------------------

    def _record(self, deployment: dict[str, Any], state: ReleaseState | None, decision: Decision) -> None:
        """The decision's Events, sent before its state is written (and so before anything is done): after
        a crash the decision is not taken again, so its Event must not wait in a queue that dies with us."""
        revision = decision.state.revision if decision.state else (state.revision if state else 0)
        for i, event in enumerate(decision.events):
            message = event.message
            if i == 0 and decision.actions:
                # The actions it orders are told here (one Event per step, not one per action); an action
                # carried out again after a crash is told by its own Event then.
                message += " — ordered: " + "; ".join(describe(action)[1] for action in decision.actions)
            self.cluster.emit(deployment, event.reason, message, event.warning, dedupe_key=f"r{revision}",
                              wait=True)
            if event.reason in ("Initialized", "ReleaseStarted"):
                warnings = release_warnings(deployment)
                if warnings:  # one Event for all of them: each is a line of it
                    self.cluster.emit(deployment, "UnsafeRelease", "; ".join(warnings), warning=True,
                                      dedupe_key=f"r{revision}")

    def _persist_and_act(self, deployment: dict[str, Any], primary: dict[str, Any] | None,
                         state: ReleaseState | None, decision: Decision, routes: _Routes | None,
                         setup: _Setup | None, force_write: bool) -> int:
        new_state = decision.state
        if new_state is not None:
            if setup is not None:
                # Remember where traffic is steered, for when the configuration turns invalid.
                new_state = new_state.replace(router=setup.router_kind, ingress=setup.spec.ingress,
                                              gateway_route=setup.spec.route)
            changed = new_state != state or decision.command_consumed or decision.alerts_consumed or force_write
            if changed and _progress_note_only(state, new_state) and not (
                    decision.command_consumed or decision.alerts_consumed or force_write):
                changed = False  # set-up steps are not worth a write each: the phase says Initializing
            if changed:
                new_state = new_state.replace(seq=(state.seq if state else 0) + 1)
                changes: dict[str, str | None] = {STATE: new_state.to_json()}
                if decision.command_consumed:
                    changes[COMMAND] = None
                if decision.alerts_consumed:
                    changes[ALERTS] = None
                deployment = self.cluster.write_annotations(deployment, changes)  # Conflict: decide again
                if primary is not None and _milestone(state, new_state):
                    self.cluster.keep_state_copy(primary, new_state.to_json())
        context = _Act(deployment, new_state, routes)
        executed = 0
        revision = new_state.revision if new_state else 0
        for action in decision.actions:
            if self._execute(action, context):
                executed += 1
                if not decision.events:  # else its decision's Event told it
                    reason, message = describe(action)
                    self.cluster.emit(deployment, reason, message, dedupe_key=f"r{revision}|{action!r}")
                if self.after_action is not None:
                    self.after_action()
        return executed

    def _execute(self, action: Action, context: _Act) -> bool:
        """Run one action; False when there was nothing to do (already in place)."""
        handler = self._handlers.get(type(action))
        if handler is None:
            raise TypeError(f"unknown action {action!r}")
        return handler(action, context)

    # --- action handlers ----------------------------------------------------------------------------

    def _scale_canary(self, action: ScaleCanary, context: _Act) -> bool:
        meta = context.deployment["metadata"]
        if (context.deployment.get("spec") or {}).get("replicas") == action.replicas:
            return False
        self.cluster.scale(meta["namespace"], meta["name"], action.replicas)
        return True

    def _delete_primary(self, _: DeletePrimary, context: _Act) -> bool:
        meta = context.deployment["metadata"]
        return self.cluster.delete_deployment(meta["namespace"], primary_name(meta["name"]))

    def _forget_release(self, _: ForgetRelease, context: _Act) -> bool:
        meta = context.deployment["metadata"]
        current = self.cluster.get_deployment(meta["namespace"], meta["name"])
        if current is not None:
            self.cluster.write_annotations(current, {STATE: None, COMMAND: None, ALERTS: None})
        return True

    def _record_revision(self, action: RecordRevision, context: _Act) -> bool:
        deployment = context.deployment
        if template_hash(deployment) != action.template_hash:
            log.warning("revision template changed before it was kept; undo cannot return to it",
                        extra={"deployment": deployment["metadata"]["name"], "revision": action.number})
            return False
        template = (deployment.get("spec") or {}).get("template") or {}
        self.revisions.record(deployment, action.number, action.template_hash, template, HISTORY_LIMIT)
        return True

    def _restore(self, action: RestoreTemplate, context: _Act) -> bool:
        deployment = context.deployment
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

    def _ensure_primary(self, action: EnsurePrimary, context: _Act) -> bool:
        deployment = context.deployment
        meta = deployment["metadata"]
        existing = self.cluster.get_deployment(meta["namespace"], primary_name(meta["name"]))
        if existing is not None and primary_template_hash(existing) == action.template_hash:
            if (existing.get("spec") or {}).get("replicas") == action.replicas:
                return False
            self.cluster.scale(meta["namespace"], primary_name(meta["name"]), action.replicas)
            return True
        source = self._with_template(deployment, action.template_hash)
        if source is None:
            log.info("primary template not available", extra={"deployment": meta["name"],
                                                               "template": action.template_hash})
            return False
        wanted = build_primary(source, action.replicas)
        if existing is None:
            self.cluster.create_deployment(wanted)
        else:
            kept = ((existing.get("metadata") or {}).get("annotations") or {}).get(STATE)
            if kept is not None:
                wanted["metadata"]["annotations"][STATE] = kept  # the state copy survives a template update
            wanted["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            self.cluster.replace_deployment(wanted)
        return True

    def _with_template(self, deployment: dict[str, Any], wanted_hash: str) -> dict[str, Any] | None:
        """The Deployment as it would be with the template of `wanted_hash`: its own when it has it,
        else one kept for undo (a primary deleted mid-release, or a rollback from a promotion)."""
        if template_hash(deployment) == wanted_hash:
            return deployment
        meta = deployment["metadata"]
        template = self.revisions.find(meta["namespace"], meta["name"], wanted_hash)
        if template is None:
            return None
        source = copy.deepcopy(deployment)
        source["spec"]["template"] = template
        return source if template_hash(source) == wanted_hash else None

    def _ensure_routes(self, action: EnsureRoutes, context: _Act) -> bool:
        routes = _need(context.routes, action)
        made = routes.router.ensure(routes.route)
        if action.repair:
            self._report_recreated(context.deployment, made)
        return True

    def _set_routing(self, action: SetRouting, context: _Act) -> bool:
        routes = _need(context.routes, action)
        wanted = canonical(action.routing)
        seen = _read(routes)
        if isinstance(seen, Observed) and seen.routing == wanted:
            return False
        if isinstance(seen, Missing):
            self._report_recreated(context.deployment, routes.router.ensure(routes.route))
        routes.router.set(routes.route, wanted)  # reads back what it set: RoutingNotApplied otherwise
        return True

    def _finalize_routes(self, action: FinalizeRoutes, context: _Act) -> bool:
        routes = _need(context.routes, action)
        routes.router.finalize(routes.route)
        return True

    def _report_recreated(self, deployment: dict[str, Any], made: list[str]) -> None:
        for what in made:
            log.warning("re-created a missing object", extra={"deployment": deployment["metadata"]["name"],
                                                              "object": what})
            self.cluster.emit(deployment, "Recreated", f"{what} was missing; re-created it with all traffic on "
                              "primary", warning=True,
                              dedupe_key=f"recreated|{deployment['metadata']['resourceVersion']}")


def _need(routes: _Routes | None, action: Action) -> _Routes:
    if routes is None:
        raise RuntimeError(f"{type(action).__name__} needs a router, and the configuration names none that works")
    return routes


def _read(routes: _Routes) -> Observed | Missing | Unreadable:
    try:
        return routes.router.read(routes.route)
    except Exception as exc:  # the contract says read never raises; a router bug must not look like data
        return Unreadable(f"{type(exc).__name__}: {str(exc)[:200]}")


def _kept_state(primary: dict[str, Any] | None, name: str) -> ReleaseState | None:
    """The state copy on a primary that Weir made for this Deployment."""
    if primary is None:
        return None
    meta = primary.get("metadata") or {}
    if (meta.get("labels") or {}).get(PART_OF_LABEL) != name:
        return None
    return read_state((meta.get("annotations") or {}).get(STATE))


def _progress_note_only(before: ReleaseState | None, after: ReleaseState) -> bool:
    """Only the message of an initialization changed (creating primary, routes, scaling down...)."""
    return (before is not None and before.phase is Phase.INITIALIZING and after.phase is Phase.INITIALIZING
            and before.replace(message=after.message) == after)


def _milestone(before: ReleaseState | None, after: ReleaseState) -> bool:
    """Phase and revision changes are copied to the primary (the fence against old state copies)."""
    return before is None or before.phase is not after.phase or before.revision != after.revision


def _config_text(deployment: dict[str, Any]) -> str:
    return str((deployment["metadata"].get("annotations") or {}).get(ROLLOUT, ""))


__all__ = ["Conflict", "Outcome", "Reconciler"]

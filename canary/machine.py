"""The release state machine: a pure function from (state, observation) to (next state, actions).

All policy lives here. It does no I/O and reads no clock. It is level-triggered: the actions it returns
are whatever is still missing for the world to match the phase, so a reconciler that crashed after any
action re-derives the rest from what it observes. Safety rules enforced here:
- traffic is sent to the canary only while the canary has ready pods;
- on rollback and at the end of a promotion, traffic returns to primary (read back) before the canary
  is scaled down;
- a phase change is persisted before the actions it causes run (the reconciler's job; the state
  returned here is what it persists).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from adapters.base import Missing, Routing, Unreadable
from analysis.model import Outcome
from canary.actions import (
    Action,
    DeletePrimary,
    Emit,
    EnsurePrimary,
    EnsureRoutes,
    FinalizeRoutes,
    ForgetRelease,
    RecordRevision,
    RestoreTemplate,
    ScaleCanary,
    SetRouting,
)
from canary.alerts import firing_alert
from canary.durations import format_duration
from canary.observation import Observation, may_send_to_canary, on_primary_only, routes_as
from canary.state import Phase, ReleaseState, Revision

PRIMARY_ONLY = Routing(0, ())
HISTORY_LIMIT = 10
# Watch events wake the reconciler whenever a Deployment's status changes; these polls only bound how
# late a deadline can be noticed, so they can be slow (100 releases must not keep the controller busy).
WAIT_POLL_SECONDS = 5.0
# These phases finish without the configuration (the router is remembered in the state): a config
# made invalid mid-way must not strand a promotion, a rollback or an opt-out half-done.
CONFIG_FREE_PHASES = frozenset({Phase.PROMOTING, Phase.ROLLING_BACK, Phase.FINALIZING})
RELEASING_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED})


@dataclass(frozen=True)
class Decision:
    state: ReleaseState | None  # None: forget the release (opt-out finished)
    actions: tuple[Action, ...] = ()
    events: tuple[Emit, ...] = ()
    command_consumed: bool = False
    requeue_after: float | None = None  # look again after this many seconds (besides watch events)
    alerts_consumed: bool = False  # the recorded alerts were considered: remove them with this state
    deadline_wake: bool = False  # requeue_after is a deadline's time: safety work when it comes


def decide(state: ReleaseState | None, obs: Observation, history_limit: int = HISTORY_LIMIT) -> Decision:
    decision = _decide(state, obs, history_limit)
    if obs.alerts:
        # Every decision considers the recorded alerts (matched, stale or irrelevant to the phase), so they
        # go with the state it writes.
        decision = replace(decision, alerts_consumed=True)
    return decision


def _decide(state: ReleaseState | None, obs: Observation, history_limit: int) -> Decision:
    if state is None:
        if not obs.enabled:
            return Decision(None)
        state = ReleaseState(phase=Phase.INITIALIZING, replicas=max(obs.canary.spec_replicas, 1),
                             phase_started_at=obs.now)
    if state.phase is Phase.DEGRADED and (obs.enabled or state.blocked_phase is Phase.FINALIZING):
        return _degraded(state, obs, history_limit)
    if not obs.enabled:
        return _finalize(state, obs)
    if obs.config_error is not None and state.phase not in CONFIG_FREE_PHASES:
        return _invalid(state, obs)
    if state.phase is Phase.INVALID:
        fixed = _enter(state, state.resume_phase or Phase.INITIALIZING, obs, resume_phase=None,
                       message="configuration is valid again; resuming")
        return Decision(fixed, events=(Emit("ConfigFixed", "configuration is valid again; resuming"),),
                        requeue_after=0)
    handler = _HANDLERS[state.phase]
    return handler(state, obs, history_limit)


def _enter(state: ReleaseState, phase: Phase, obs: Observation, **changes: object) -> ReleaseState:
    """`state` moved to `phase`: its deadline counts from now."""
    return state.replace(phase=phase, phase_started_at=obs.now, **changes)


# --- phases -------------------------------------------------------------------------------------------


def _initializing(state: ReleaseState, obs: Observation, _: int) -> Decision:
    wanted = obs.canary.template_hash
    assert wanted is not None, "the reconciler always hashes the user's template"
    if state.primary_hash != wanted:
        # Adopt the template the Deployment runs now as the first primary version.
        state = state.replace(primary_hash=wanted, message="creating primary")
    if obs.primary.template_hash != wanted or obs.primary.spec_replicas != state.replicas:
        return _hold(state, obs, "creating primary", (EnsurePrimary(wanted, state.replicas),))
    if not obs.primary.rolled_out:
        return _hold(state, obs, f"waiting for primary: {obs.primary.ready}/{state.replicas} ready")
    if isinstance(obs.routing, Missing | Unreadable):
        return Decision(state.replace(message="creating routes"), (EnsureRoutes(),), requeue_after=0)
    if may_send_to_canary(obs.routing):
        return Decision(state, (SetRouting(PRIMARY_ONLY),), requeue_after=0)
    if obs.canary.spec_replicas != 0:
        # Still Initializing until the Deployment is down, so `Idle` always means the settled world.
        return Decision(state.replace(message="primary serves; scaling the Deployment down"), (ScaleCanary(0),),
                        requeue_after=0)
    idle = _enter(state, Phase.IDLE, obs, message="primary serves all traffic", revision=0,
                  history=(Revision(0, wanted, obs.now),))
    return Decision(idle, (RecordRevision(0, wanted),),
                    (Emit("Initialized", f"{idle.message}; canary scaled to 0"),), requeue_after=0)


def _idle(state: ReleaseState, obs: Observation, history_limit: int) -> Decision:
    command = obs.command
    consumed = False
    if command is not None and command.startswith("undo"):
        return _undo(state, obs, command)
    if command == "retry" and state.phase is Phase.ROLLED_BACK:
        state = state.replace(failed_hash=None)
        consumed = True
    elif command is not None:
        consumed = True  # nothing to promote, abort or pause: the command is spent either way
    current = obs.canary.template_hash
    if current is not None and current not in (state.primary_hash, state.failed_hash):
        return _start_release(state, obs, current, consumed)
    if obs.canary.spec_replicas > 0 and obs.canary.spec_replicas != state.replicas:
        # The user scaled their Deployment (kubectl scale / apply, an autoscaler) without a new template:
        # that is the new size of the service.
        state = state.replace(replicas=obs.canary.spec_replicas, message=f"scaled to {obs.canary.spec_replicas}")
    return Decision(state, _idle_world(state, obs), command_consumed=consumed,
                    requeue_after=WAIT_POLL_SECONDS if isinstance(obs.routing, Unreadable) else None)


def _undo(state: ReleaseState, obs: Observation, command: str) -> Decision:
    """`undo`: the newest kept revision other than the Deployment's current template (after a rollback,
    that is what primary serves, so the Deployment is simply set back to it); `undo:N`: revision N."""
    if command == "undo":
        older = [r for r in state.history if r.template_hash != obs.canary.template_hash]
        target = older[-1] if older else None
    else:
        wanted = int(command.split(":", 1)[1])
        target = next((r for r in state.history if r.number == wanted), None)
    if target is None:
        kept = ", ".join(str(r.number) for r in state.history) or "none"
        message = f"undo refused: no such revision to go back to (kept: {kept})"
        return Decision(state.replace(message=message), (), (Emit("UndoRefused", message, warning=True),),
                        command_consumed=True)
    if target.template_hash == obs.canary.template_hash:
        return Decision(state, (), command_consumed=True)
    undoing = state.replace(failed_hash=None, message=f"undo: releasing revision {target.number} again")
    return Decision(undoing, (RestoreTemplate(target.number, target.template_hash),), command_consumed=True,
                    requeue_after=0)


def _start_release(state: ReleaseState, obs: Observation, template_hash: str, consumed: bool) -> Decision:
    replicas = obs.canary.spec_replicas if obs.canary.spec_replicas > 0 else state.replicas
    release = _enter(
        state, Phase.PROGRESSING, obs, replicas=replicas, canary_hash=template_hash, revision=state.revision + 1,
        release_started_at=obs.now, canary_ready_at=None, step=0, step_started_at=None, paused_at=None,
        paused_by=None, stage_name="starting canary", message=f"starting canary {template_hash}", verdict={},
    )
    actions: list[Action] = []
    if may_send_to_canary(obs.routing):
        actions.append(SetRouting(PRIMARY_ONLY))  # old canary pods are about to be replaced
    events = [Emit("ReleaseStarted", f"revision {release.revision}: releasing template {template_hash}")]
    if obs.canary.paused:
        # A paused Deployment rolls nothing out: scaling it now would start pods of the old template.
        release = release.replace(phase=Phase.PAUSED, paused_at=obs.now, paused_by="deployment",
                                  message=_PAUSED_BY_DEPLOYMENT)
        events.append(Emit("Paused", f"revision {release.revision}: {_PAUSED_BY_DEPLOYMENT}"))
    else:
        actions.append(ScaleCanary(replicas))
    return Decision(release, tuple(actions), tuple(events), command_consumed=consumed,
                    requeue_after=WAIT_POLL_SECONDS)


_PAUSED_BY_DEPLOYMENT = ("the Deployment is paused (kubectl rollout pause): release paused, traffic held, clocks "
                         "stopped; kubectl rollout resume continues it")


def _progressing(state: ReleaseState, obs: Observation, _: int) -> Decision:
    if obs.canary.template_hash != state.canary_hash:
        return _restart(state, obs)
    stopped = _operator_or_alert(state, obs)
    if stopped is not None:
        return stopped
    if obs.canary.paused:
        return _pause(state, obs, "deployment", _PAUSED_BY_DEPLOYMENT)
    state, resized = _follow_scale(state, obs)
    actions = list(resized)
    if isinstance(obs.routing, Missing):
        # Something Weir owns was deleted: re-create it (all traffic on primary), then re-apply the step.
        return Decision(state, (*actions, EnsureRoutes(repair=True)), requeue_after=0)
    if not _canary_ready(state, obs):
        return _canary_not_ready(state, obs, actions)
    if state.canary_ready_at is None:
        state = state.replace(canary_ready_at=obs.now)
    steps = obs.steps
    if not steps:
        return _to_promoting(state, obs, "no stages configured", actions)
    step = steps[min(state.step, len(steps) - 1)]
    if state.step_started_at is None:
        state = state.replace(step_started_at=obs.now, stage_name=step.label, weight=step.routing.canary_weight,
                              matches=step.routing.matches, message=f"{step.label}: shifting traffic")
    if not routes_as(obs.routing, step.routing):
        assert state.step_started_at is not None
        waited = obs.now - state.step_started_at
        if obs.verdict is not None and obs.verdict.outcome is Outcome.FAIL:
            # The analysis does not need the router: a failing canary is rolled back at once.
            return _to_rolling_back(state, obs, f"analysis failed: {obs.verdict.reason}", actions)
        if waited > obs.deadline_seconds:
            return _to_rolling_back(state, obs, f"traffic could not be set to {step.label} within the progress "
                                                f"deadline ({format_duration(obs.deadline_seconds)}): {_seen(obs)}",
                                    actions)
        actions.append(SetRouting(step.routing))
        return Decision(state, tuple(actions), requeue_after=min(WAIT_POLL_SECONDS, obs.deadline_seconds - waited))
    return _judge_step(state, obs, step.hold_seconds, tuple(actions))


def _follow_scale(state: ReleaseState, obs: Observation) -> tuple[ReleaseState, tuple[Action, ...]]:
    """`kubectl scale` (or an autoscaler) on the Deployment mid-release sets the size both arms converge
    to, and the promotion keeps it. Zero is Weir's own scale-down not yet undone (or a scale to zero,
    which a release cannot judge): the canary is brought back to the release's size."""
    wanted = obs.canary.spec_replicas
    if wanted == 0:
        return state, (ScaleCanary(state.replicas),)
    if wanted == state.replicas:
        return state, ()
    resized = state.replace(replicas=wanted)
    return resized, (EnsurePrimary(state.primary_hash or "", wanted),) if state.primary_hash else ()


def _judge_step(state: ReleaseState, obs: Observation, hold: float, actions: tuple[Action, ...]) -> Decision:
    assert state.step_started_at is not None
    elapsed = obs.now - state.step_started_at
    verdict = obs.verdict
    if verdict is None:
        return Decision(state, actions, requeue_after=WAIT_POLL_SECONDS)
    summary = {"outcome": verdict.outcome.value, "reason": verdict.reason, **dict(verdict.evidence)}
    state = state.replace(verdict=summary)
    if verdict.outcome is Outcome.FAIL:
        return _to_rolling_back(state, obs, f"analysis failed: {verdict.reason}", actions)
    # Between these wake-ups the analysis job (one per release, at its analysis interval) asks again.
    if verdict.outcome is Outcome.NODATA:
        if elapsed > obs.deadline_seconds:
            return _to_rolling_back(
                state, obs, f"no usable metrics for {format_duration(elapsed)} ({verdict.reason})", actions)
        return Decision(state.replace(message=f"{state.stage_name}: holding, {verdict.reason}"), actions,
                        requeue_after=obs.deadline_seconds - elapsed, deadline_wake=True)
    if elapsed < hold:
        return Decision(state.replace(message=f"{state.stage_name}: {verdict.outcome.value}"), actions,
                        requeue_after=hold - elapsed)
    nxt = state.step + 1
    if nxt >= len(obs.steps):
        return _to_promoting(state, obs, "all stages passed", actions)
    step = obs.steps[nxt]
    advanced = state.replace(step=nxt, step_started_at=obs.now, stage_name=step.label,
                             weight=step.routing.canary_weight, matches=step.routing.matches,
                             message=f"{step.label}: shifting traffic")
    event = Emit("StepAdvanced", f"revision {state.revision}: {step.label} ({verdict.outcome.value}: {verdict.reason})")
    return Decision(advanced, (*actions, SetRouting(step.routing)), (event,), requeue_after=0)


def _canary_not_ready(state: ReleaseState, obs: Observation, actions: list[Action]) -> Decision:
    if obs.canary.ready == 0 and may_send_to_canary(obs.routing):
        actions.append(SetRouting(PRIMARY_ONLY))  # never leave traffic on a canary with no ready pod
    since = state.release_started_at if state.canary_ready_at is None else state.step_started_at
    since = obs.now if since is None else since
    if state.canary_ready_at is not None and obs.canary.ready == 0:
        return _to_rolling_back(state, obs, "canary lost all its ready pods", actions)
    if obs.now - since > obs.deadline_seconds:
        return _to_rolling_back(
            state, obs, f"canary not ready within the progress deadline ({format_duration(obs.deadline_seconds)}): "
                        f"{obs.canary.ready}/{state.replicas} ready", actions)
    message = f"waiting for canary: {obs.canary.ready}/{state.replicas} ready"
    until_deadline = obs.deadline_seconds - (obs.now - since)
    return Decision(state.replace(message=message), tuple(actions),
                    requeue_after=min(WAIT_POLL_SECONDS, until_deadline + 0.1),
                    deadline_wake=until_deadline + 0.1 <= WAIT_POLL_SECONDS)


def _pause(state: ReleaseState, obs: Observation, by: str, why: str, consumed: bool = False) -> Decision:
    paused = state.replace(phase=Phase.PAUSED, paused_at=obs.now, paused_by=by, message=why)
    return Decision(paused, (), (Emit("Paused", f"revision {state.revision}: {why}"),), command_consumed=consumed)


def _paused(state: ReleaseState, obs: Observation, _: int) -> Decision:
    if obs.canary.template_hash != state.canary_hash:
        return _restart(state, obs)
    by_operator = state.paused_by != "deployment"
    if obs.command == "resume" or (not by_operator and not obs.canary.paused):
        if obs.canary.paused:
            held = state.replace(paused_by="deployment", message=_PAUSED_BY_DEPLOYMENT)
            return Decision(held, command_consumed=True)
        shift = obs.now - (state.paused_at or obs.now)
        resumed = state.replace(
            phase=Phase.PROGRESSING, paused_at=None, paused_by=None, message="resumed",
            step_started_at=None if state.step_started_at is None else state.step_started_at + shift,
            release_started_at=None if state.release_started_at is None else state.release_started_at + shift)
        how = "by operator" if obs.command == "resume" else "the Deployment was resumed (kubectl rollout resume)"
        return Decision(resumed, (), (Emit("Resumed", f"revision {state.revision} resumed: {how}"),),
                        command_consumed=obs.command is not None, requeue_after=0)
    stopped = _operator_or_alert(state, obs)
    if stopped is not None:
        return stopped
    if obs.command == "pause" and not by_operator:
        return Decision(state.replace(paused_by="operator", message="paused by operator"), command_consumed=True)
    if isinstance(obs.routing, Missing):
        return Decision(state, (EnsureRoutes(repair=True),), requeue_after=0)
    if obs.canary.ready == 0 and may_send_to_canary(obs.routing):
        return Decision(state, (SetRouting(PRIMARY_ONLY),), requeue_after=WAIT_POLL_SECONDS)
    return Decision(state, (), command_consumed=obs.command is not None)


def _promoting(state: ReleaseState, obs: Observation, history_limit: int) -> Decision:
    target = state.canary_hash
    assert target is not None
    if obs.primary.template_hash != target:
        if obs.canary.template_hash != target:
            return _restart(state, obs)  # the template changed again before primary took it
        stopped = _operator_or_alert(state, obs, promoting=True)
        if stopped is not None:
            return stopped
        state, _ = _follow_scale(state, obs)
        return _promotion_deadline(state, obs, "promoting: updating primary", (EnsurePrimary(target, state.replicas),))
    consumed = obs.command is not None  # primary already runs the new version: nothing left to steer
    if obs.canary.spec_replicas not in (0, state.replicas):
        state = state.replace(replicas=obs.canary.spec_replicas)
    if obs.primary.spec_replicas != state.replicas:
        return Decision(state, (EnsurePrimary(target, state.replicas),), command_consumed=consumed, requeue_after=0)
    if obs.primary.paused:
        # A person paused the primary: its rollout waits for them, and so does the promotion's clock.
        held = state if state.paused_at is not None else state.replace(paused_at=obs.now)
        primary = f"{obs.name}-primary"
        why = (f"promotion held: Deployment {primary} is paused (kubectl rollout pause); "
               f"kubectl rollout resume deploy/{primary} continues it")
        events = () if state.paused_at is not None else (Emit("PromotionHeld", why, warning=True),)
        return Decision(held.replace(message=why), (), events, command_consumed=consumed)
    if state.paused_at is not None:
        shift = obs.now - state.paused_at
        state = state.replace(paused_at=None, progress_at=None if state.progress_at is None else
                              state.progress_at + shift)
    if not obs.primary.rolled_out:
        return _promotion_deadline(state, obs, f"promoting: primary {obs.primary.updated}/{state.replicas} updated, "
                                               f"{obs.primary.ready} ready", (), consumed)
    if isinstance(obs.routing, Missing):
        return Decision(state, (EnsureRoutes(repair=True),), command_consumed=consumed, requeue_after=0)
    if not on_primary_only(obs.routing):
        return _promotion_deadline(state.replace(message="promoting: routing all traffic to primary"), obs,
                                   f"promoting: routing all traffic to primary ({_seen(obs)})",
                                   (SetRouting(PRIMARY_ONLY),), consumed)
    if obs.canary.spec_replicas != 0:
        return Decision(state.replace(message="promoting: scaling canary down"), (ScaleCanary(0),),
                        command_consumed=consumed, requeue_after=0)
    history = (*state.history, Revision(state.revision, target, obs.now))[-history_limit:]
    done = _enter(state, Phase.IDLE, obs, primary_hash=target, failed_hash=None, weight=0, matches=(),
                  stage_name="", history=history, message=f"revision {state.revision} promoted")
    return Decision(done, (RecordRevision(state.revision, target),),
                    (Emit("Promoted", f"revision {state.revision} ({target}) promoted to primary"),),
                    command_consumed=consumed)


def _promotion_deadline(state: ReleaseState, obs: Observation, message: str, actions: tuple[Action, ...],
                        consumed: bool = False) -> Decision:
    """A promotion that makes no progress for the progress deadline is rolled back: primary goes back to
    the version it served, traffic with it. Progress is the primary's rollout moving (as Kubernetes
    counts it for progressDeadlineSeconds), so a large rollout that keeps moving is not cut short."""
    primary = obs.primary
    mark = f"{primary.template_hash}:{primary.updated}:{primary.ready}:{primary.available}:{primary.total}"
    if mark != state.progress_mark:
        state = state.replace(progress_mark=mark, progress_at=obs.now)
    since = state.progress_at if state.progress_at is not None else obs.now
    waited = obs.now - since
    if waited > obs.deadline_seconds:
        return _to_rolling_back(state, obs, f"promotion made no progress for the progress deadline "
                                            f"({format_duration(obs.deadline_seconds)}): {message}", (), consumed)
    until = obs.deadline_seconds - waited + 0.1
    return Decision(state.replace(message=message), actions, command_consumed=consumed,
                    requeue_after=min(WAIT_POLL_SECONDS, until), deadline_wake=until <= WAIT_POLL_SECONDS)


def _rolling_back(state: ReleaseState, obs: Observation, _: int) -> Decision:
    consumed = obs.command is not None
    actions: list[Action] = []
    if state.primary_hash and (obs.primary.template_hash != state.primary_hash
                               or obs.primary.spec_replicas != state.replicas):
        # A rollback from a promotion: primary goes back to the version it served before.
        actions.append(EnsurePrimary(state.primary_hash, state.replicas))
    if isinstance(obs.routing, Missing):
        return _hold(state, obs, f"rolling back: re-creating routes ({obs.routing.what} is missing)",
                     (*actions, EnsureRoutes(repair=True)), consumed)
    if not on_primary_only(obs.routing):
        if obs.primary.ready == 0 and obs.canary.ready > 0:
            return _hold(state, obs, "rolling back: waiting for a ready primary pod before moving traffic to it",
                         tuple(actions), consumed)
        return _hold(state, obs, f"rolling back: cannot confirm all traffic is on primary ({_seen(obs)})",
                     (*actions, SetRouting(PRIMARY_ONLY)), consumed)
    if obs.canary.spec_replicas != 0:
        return Decision(state, (*actions, ScaleCanary(0)), command_consumed=consumed, requeue_after=0)
    done = _enter(state, Phase.ROLLED_BACK, obs, failed_hash=state.canary_hash, weight=0, matches=(), stage_name="")
    return Decision(done, tuple(actions), (Emit("RolledBack", f"revision {state.revision} rolled back: "
                                                              f"{state.message}", warning=True),),
                    command_consumed=consumed)


def _finalize(state: ReleaseState, obs: Observation) -> Decision:
    events: tuple[Emit, ...] = ()
    if state.phase is not Phase.FINALIZING:
        if state.phase is Phase.INVALID and not obs.primary.exists:
            return Decision(None, (ForgetRelease(),))  # nothing was ever created
        state = _enter(state, Phase.FINALIZING, obs, message="opt-out: handing traffic back to the Deployment",
                       blocked_phase=None, resume_phase=None)
        events = (Emit("OptOut", state.message),)
    if obs.canary.spec_replicas != state.replicas:
        decision = _hold(state, obs, state.message, (ScaleCanary(state.replicas),))
        return replace(decision, events=events + decision.events)
    if not obs.canary.rolled_out:
        # Primary keeps serving until the Deployment's own pods are ready: no request is dropped.
        why = "the Deployment is paused (kubectl rollout resume it)" if obs.canary.paused else ""
        decision = _hold(state, obs, f"opt-out: waiting for {obs.canary.ready}/{state.replicas} ready"
                                     + (f"; {why}" if why else ""))
        return replace(decision, events=events + decision.events)
    return Decision(None, (FinalizeRoutes(), DeletePrimary(), ForgetRelease()), events)


def _invalid(state: ReleaseState, obs: Observation) -> Decision:
    """A configuration made invalid: nothing new is started, and a release in progress moves its traffic
    to primary (its canary keeps running, so fixing the configuration resumes it). Alerts and `abort`
    still roll it back; with the matchers unreadable, every alert about the workload counts."""
    message = obs.config_error or ""
    resume = state.resume_phase if state.phase is Phase.INVALID else state.phase
    consumed = obs.command is not None
    releasing = resume in RELEASING_PHASES
    if releasing:
        alert = firing_alert(obs.alerts, (), state.release_started_at)
        if alert is not None or obs.command == "abort":
            why = f"alert firing: {alert}" if alert is not None else "aborted by operator"
            back = state.replace(resume_phase=None)
            return _to_rolling_back(back, obs, f"{why} (while the configuration is invalid)", (), consumed)
    actions: tuple[Action, ...] = (SetRouting(PRIMARY_ONLY),) if releasing and may_send_to_canary(obs.routing) else ()
    invalid = state.replace(phase=Phase.INVALID, resume_phase=resume, message=message,
                            step_started_at=None if releasing else state.step_started_at)
    events: tuple[Emit, ...] = ()
    if state.phase is not Phase.INVALID or state.message != message:
        held = " Traffic moved to primary until it is fixed." if releasing else ""
        events = (Emit("InvalidConfig", message + held, warning=True),)
    return Decision(invalid, actions, events, command_consumed=consumed,
                    requeue_after=WAIT_POLL_SECONDS if actions else None)


def _degraded(state: ReleaseState, obs: Observation, history_limit: int) -> Decision:
    """A phase that overran its deadline keeps being worked (its deadline spent); the state says Degraded
    until the phase moves on by itself."""
    blocked = state.blocked_phase or Phase.INITIALIZING
    inner = _decide(state.replace(phase=blocked, blocked_phase=None, phase_started_at=None), obs, history_limit)
    if inner.state is not None and inner.state.phase is blocked:
        still = inner.state.replace(phase=Phase.DEGRADED, blocked_phase=blocked,
                                    phase_started_at=state.phase_started_at,
                                    message=f"{blocked} overran its deadline: {inner.state.message}")
        return replace(inner, state=still, requeue_after=min(inner.requeue_after or WAIT_POLL_SECONDS,
                                                             WAIT_POLL_SECONDS))
    recovered = Emit("Recovered", f"{blocked} is no longer blocked")
    return replace(inner, events=(recovered, *inner.events))


def _hold(state: ReleaseState, obs: Observation, message: str, actions: tuple[Action, ...] = (),
          consumed: bool = False) -> Decision:
    """Wait in this phase for the world to catch up; past the progress deadline the phase is Degraded:
    still worked on, and the user is told what blocks it."""
    started = state.phase_started_at
    if started is not None and obs.now - started > obs.deadline_seconds:
        why = f"{state.phase} overran its deadline ({format_duration(obs.deadline_seconds)}): {message}"
        degraded = state.replace(phase=Phase.DEGRADED, blocked_phase=state.phase, message=why)
        return Decision(degraded, actions, (Emit("Degraded", why, warning=True),), command_consumed=consumed,
                        requeue_after=WAIT_POLL_SECONDS)
    until = WAIT_POLL_SECONDS if started is None else obs.deadline_seconds - (obs.now - started) + 0.1
    return Decision(state.replace(message=message), actions, command_consumed=consumed,
                    requeue_after=min(WAIT_POLL_SECONDS, until), deadline_wake=until <= WAIT_POLL_SECONDS)


# --- shared transitions --------------------------------------------------------------------------------


def _operator_or_alert(state: ReleaseState, obs: Observation, promoting: bool = False) -> Decision | None:
    alert = firing_alert(obs.alerts, obs.alert_rules, state.release_started_at)
    if alert is not None:
        return _to_rolling_back(state, obs, f"alert firing: {alert}", (), consumed=obs.command is not None)
    command = obs.command
    if command == "abort":
        return _to_rolling_back(state, obs, "aborted by operator", (), consumed=True)
    if promoting:
        return None
    if command in ("promote", "promote-full"):
        if command == "promote" and not _canary_ready(state, obs):
            return Decision(state.replace(message="promote refused: canary is not ready (use promote --full)"),
                            (), (Emit("PromoteRefused", "canary is not ready; use promote --full", warning=True),),
                            command_consumed=True)
        return _to_promoting(state, obs, f"{command} by operator", (), consumed=True)
    if command is not None and command.startswith("undo"):
        message = "undo is for between releases: abort this release first (it rolls back to primary)"
        return Decision(state, (), (Emit("UndoRefused", message, warning=True),), command_consumed=True)
    if command == "pause" and state.phase is Phase.PROGRESSING:
        return _pause(state, obs, "operator", "paused by operator", consumed=True)
    return None


def _to_promoting(state: ReleaseState, obs: Observation, why: str, actions: tuple[Action, ...] | list[Action],
                  consumed: bool = False) -> Decision:
    promoting = _enter(state, Phase.PROMOTING, obs, paused_at=None, paused_by=None, message=f"promoting: {why}",
                       stage_name="promoting", progress_mark="", progress_at=obs.now)
    event = Emit("Promoting", f"revision {state.revision}: {why}")
    return Decision(promoting, (*actions, EnsurePrimary(state.canary_hash or "", state.replicas)), (event,),
                    command_consumed=consumed, requeue_after=0)


def _to_rolling_back(state: ReleaseState, obs: Observation, why: str, actions: tuple[Action, ...] | list[Action],
                     consumed: bool = False) -> Decision:
    back = _enter(state, Phase.ROLLING_BACK, obs, paused_at=None, paused_by=None, message=why,
                  stage_name="rolling back")
    # Traffic leaves the canary first; scaling down happens once the router reads back primary-only.
    kept = tuple(a for a in actions if not isinstance(a, SetRouting | ScaleCanary))
    first = _rolling_back(back, obs, 0)
    return Decision(back.replace(message=why), (*kept, *first.actions),
                    (Emit("RollingBack", f"revision {state.revision}: {why}", warning=True),),
                    command_consumed=consumed, requeue_after=0)


def _restart(state: ReleaseState, obs: Observation) -> Decision:
    restarted = state.replace(phase=Phase.IDLE, message="template changed during the release; restarting")
    decision = _start_release(restarted, obs, obs.canary.template_hash or "", obs.command is not None)
    events = (Emit("ReleaseSuperseded", f"revision {state.revision} superseded by a newer template"),
              *decision.events)
    return replace(decision, events=events)


def _canary_ready(state: ReleaseState, obs: Observation) -> bool:
    return obs.canary.template_hash == state.canary_hash and obs.canary.rolled_out and obs.canary.spec_replicas > 0


def _idle_world(state: ReleaseState, obs: Observation) -> tuple[Action, ...]:
    """Between releases: primary runs the promoted template, all traffic on primary, canary at zero."""
    actions: list[Action] = []
    if state.primary_hash and (obs.primary.template_hash != state.primary_hash
                               or obs.primary.spec_replicas != state.replicas):
        actions.append(EnsurePrimary(state.primary_hash, state.replicas))
    if isinstance(obs.routing, Missing):
        actions.append(EnsureRoutes(repair=True))
    elif may_send_to_canary(obs.routing) and not isinstance(obs.routing, Unreadable):
        actions.append(SetRouting(PRIMARY_ONLY))
    if obs.canary.spec_replicas != 0 and on_primary_only(obs.routing):
        actions.append(ScaleCanary(0))
    return tuple(actions)


def _seen(obs: Observation) -> str:
    read = obs.routing
    if isinstance(read, Missing):
        return f"{read.what} is missing"
    if isinstance(read, Unreadable):
        return f"router unreadable: {read.reason}"
    return f"router reads canary weight {read.routing.canary_weight}%" + (
        f" with {len(read.routing.matches)} match(es)" if read.routing.matches else "")


_HANDLERS = {
    Phase.INITIALIZING: _initializing,
    Phase.IDLE: _idle,
    Phase.ROLLED_BACK: _idle,
    Phase.PROGRESSING: _progressing,
    Phase.PAUSED: _paused,
    Phase.PROMOTING: _promoting,
    Phase.ROLLING_BACK: _rolling_back,
    Phase.FINALIZING: lambda s, o, _: _finalize(s, o),
}

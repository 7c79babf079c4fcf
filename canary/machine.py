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

from dataclasses import dataclass

from adapters.base import Routing
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
from canary.durations import format_duration
from canary.observation import Observation
from canary.state import Phase, ReleaseState, Revision

PRIMARY_ONLY = Routing(0, ())
HISTORY_LIMIT = 10
# Watch events wake the reconciler whenever a Deployment's status changes; these polls only bound how
# late a deadline can be noticed, so they can be slow (100 releases must not keep the controller busy).
WAIT_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class Decision:
    state: ReleaseState | None  # None: forget the release (opt-out finished)
    actions: tuple[Action, ...] = ()
    events: tuple[Emit, ...] = ()
    command_consumed: bool = False
    requeue_after: float | None = None  # look again after this many seconds (besides watch events)


def sends_to_canary(routing: Routing | None) -> bool:
    return routing is not None and (routing.canary_weight > 0 or bool(routing.matches))


def decide(state: ReleaseState | None, obs: Observation, history_limit: int = HISTORY_LIMIT) -> Decision:
    if state is None:
        if not obs.enabled:
            return Decision(None)
        state = ReleaseState(phase=Phase.INITIALIZING, replicas=max(obs.canary.spec_replicas, 1))
    if not obs.enabled:
        return _finalize(state, obs)
    if obs.config_error is not None:
        return _invalid(state, obs)
    if state.phase is Phase.INVALID:
        fixed = state.replace(phase=state.resume_phase or Phase.INITIALIZING, resume_phase=None, message="")
        return Decision(fixed, events=(Emit("ConfigFixed", "configuration is valid again; resuming"),),
                        requeue_after=0)
    handler = _HANDLERS[state.phase]
    return handler(state, obs, history_limit)


# --- phases -------------------------------------------------------------------------------------------


def _initializing(state: ReleaseState, obs: Observation, _: int) -> Decision:
    wanted = obs.canary.template_hash
    assert wanted is not None, "the reconciler always hashes the user's template"
    if state.primary_hash != wanted:
        # Adopt the template the Deployment runs now as the first primary version.
        state = state.replace(primary_hash=wanted, message="creating primary")
    if obs.primary.template_hash != wanted or obs.primary.spec_replicas != state.replicas:
        return Decision(state, (EnsurePrimary(wanted, state.replicas),), requeue_after=WAIT_POLL_SECONDS)
    if not obs.primary.rolled_out:
        return _wait(state, f"waiting for primary: {obs.primary.ready}/{state.replicas} ready")
    if obs.routing is None:
        return Decision(state.replace(message="creating routes"), (EnsureRoutes(),), requeue_after=0)
    if sends_to_canary(obs.routing):
        return Decision(state, (SetRouting(PRIMARY_ONLY),), requeue_after=0)
    if obs.canary.spec_replicas != 0:
        # Still Initializing until the Deployment is down, so `Idle` always means the settled world.
        return Decision(state.replace(message="primary serves; scaling the Deployment down"), (ScaleCanary(0),),
                        requeue_after=0)
    idle = state.replace(phase=Phase.IDLE, message="primary serves all traffic", revision=0,
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
    if obs.canary.spec_replicas > 0 and current == state.primary_hash:
        # The user scaled their Deployment (kubectl scale / apply) without changing the template:
        # that is the new size of the service.
        state = state.replace(replicas=obs.canary.spec_replicas, message=f"scaled to {obs.canary.spec_replicas}")
    return Decision(state, _idle_world(state, obs), command_consumed=consumed)


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
    release = state.replace(
        phase=Phase.PROGRESSING, replicas=replicas, canary_hash=template_hash, revision=state.revision + 1,
        release_started_at=obs.now, canary_ready_at=None, step=0, step_started_at=None, paused_at=None,
        stage_name="starting canary", message=f"starting canary {template_hash}", verdict={},
    )
    actions: list[Action] = []
    if sends_to_canary(obs.routing):
        actions.append(SetRouting(PRIMARY_ONLY))  # old canary pods are about to be replaced
    actions.append(ScaleCanary(replicas))
    event = Emit("ReleaseStarted", f"revision {release.revision}: releasing template {template_hash}")
    return Decision(release, tuple(actions), (event,), command_consumed=consumed, requeue_after=WAIT_POLL_SECONDS)


def _progressing(state: ReleaseState, obs: Observation, _: int) -> Decision:
    if obs.canary.template_hash != state.canary_hash:
        return _restart(state, obs)
    stopped = _operator_or_alert(state, obs)
    if stopped is not None:
        return stopped
    actions: list[Action] = []
    if obs.canary.spec_replicas != state.replicas:
        actions.append(ScaleCanary(state.replicas))
    if not _canary_ready(state, obs):
        return _canary_not_ready(state, obs, actions)
    if state.canary_ready_at is None:
        state = state.replace(canary_ready_at=obs.now)
    steps = obs.steps
    if not steps:
        return _to_promoting(state, "no stages configured", actions)
    step = steps[min(state.step, len(steps) - 1)]
    if state.step_started_at is None or obs.routing != step.routing:
        if state.step_started_at is None:
            state = state.replace(step_started_at=obs.now, stage_name=step.label, weight=step.routing.canary_weight,
                                  matches=step.routing.matches, message=f"{step.label}: shifting traffic")
        actions.append(SetRouting(step.routing))
        return Decision(state, tuple(actions), requeue_after=0)
    return _judge_step(state, obs, step.hold_seconds, tuple(actions))


def _judge_step(state: ReleaseState, obs: Observation, hold: float, actions: tuple[Action, ...]) -> Decision:
    assert state.step_started_at is not None
    elapsed = obs.now - state.step_started_at
    verdict = obs.verdict
    if verdict is None:
        return Decision(state, actions, requeue_after=WAIT_POLL_SECONDS)
    summary = {"outcome": verdict.outcome.value, "reason": verdict.reason, **dict(verdict.evidence)}
    state = state.replace(verdict=summary)
    if verdict.outcome is Outcome.FAIL:
        return _to_rolling_back(state, f"analysis failed: {verdict.reason}", actions)
    # Between these wake-ups the analysis job (one per release, at its analysis interval) asks again.
    if verdict.outcome is Outcome.NODATA:
        if elapsed > obs.deadline_seconds:
            return _to_rolling_back(
                state, f"no usable metrics for {format_duration(elapsed)} ({verdict.reason})", actions)
        return Decision(state.replace(message=f"{state.stage_name}: holding, {verdict.reason}"), actions,
                        requeue_after=obs.deadline_seconds - elapsed)
    if elapsed < hold:
        return Decision(state.replace(message=f"{state.stage_name}: {verdict.outcome.value}"), actions,
                        requeue_after=hold - elapsed)
    nxt = state.step + 1
    if nxt >= len(obs.steps):
        return _to_promoting(state, "all stages passed", actions)
    step = obs.steps[nxt]
    advanced = state.replace(step=nxt, step_started_at=obs.now, stage_name=step.label,
                             weight=step.routing.canary_weight, matches=step.routing.matches,
                             message=f"{step.label}: shifting traffic")
    event = Emit("StepAdvanced", f"revision {state.revision}: {step.label} ({verdict.outcome.value}: {verdict.reason})")
    return Decision(advanced, (*actions, SetRouting(step.routing)), (event,), requeue_after=0)


def _canary_not_ready(state: ReleaseState, obs: Observation, actions: list[Action]) -> Decision:
    if obs.canary.ready == 0 and sends_to_canary(obs.routing):
        actions.append(SetRouting(PRIMARY_ONLY))  # never leave traffic on a canary with no ready pod
    since = state.release_started_at if state.canary_ready_at is None else state.step_started_at
    since = obs.now if since is None else since
    if state.canary_ready_at is not None and obs.canary.ready == 0:
        return _to_rolling_back(state, "canary lost all its ready pods", actions)
    if obs.now - since > obs.deadline_seconds:
        return _to_rolling_back(
            state, f"canary not ready within the progress deadline ({format_duration(obs.deadline_seconds)}): "
                   f"{obs.canary.ready}/{state.replicas} ready", actions)
    message = f"waiting for canary: {obs.canary.ready}/{state.replicas} ready"
    until_deadline = obs.deadline_seconds - (obs.now - since)
    return Decision(state.replace(message=message), tuple(actions),
                    requeue_after=min(WAIT_POLL_SECONDS, until_deadline + 0.1))


def _paused(state: ReleaseState, obs: Observation, _: int) -> Decision:
    if obs.canary.template_hash != state.canary_hash:
        return _restart(state, obs)
    if obs.command == "resume":
        shift = obs.now - (state.paused_at or obs.now)
        resumed = state.replace(
            phase=Phase.PROGRESSING, paused_at=None, message="resumed",
            step_started_at=None if state.step_started_at is None else state.step_started_at + shift,
            release_started_at=None if state.release_started_at is None else state.release_started_at + shift)
        return Decision(resumed, (), (Emit("Resumed", f"revision {state.revision} resumed"),),
                        command_consumed=True, requeue_after=0)
    stopped = _operator_or_alert(state, obs)
    if stopped is not None:
        return stopped
    if obs.canary.ready == 0 and sends_to_canary(obs.routing):
        return Decision(state, (SetRouting(PRIMARY_ONLY),), requeue_after=WAIT_POLL_SECONDS)
    return Decision(state, (), command_consumed=obs.command is not None)


def _promoting(state: ReleaseState, obs: Observation, history_limit: int) -> Decision:
    target = state.canary_hash
    assert target is not None
    if obs.primary.template_hash != target:
        if obs.canary.template_hash != target:
            return _restart(state, obs)  # the template changed again before primary took it
        if obs.command == "abort" or obs.alert:
            return _operator_or_alert(state, obs) or Decision(state)
        return Decision(state.replace(message="promoting: updating primary"),
                        (EnsurePrimary(target, state.replicas),), requeue_after=WAIT_POLL_SECONDS)
    consumed = obs.command is not None  # primary already runs the new version: nothing left to steer
    if not obs.primary.rolled_out:
        return _wait(state, f"promoting: primary {obs.primary.updated}/{state.replicas} updated, "
                            f"{obs.primary.ready} ready", consumed)
    if sends_to_canary(obs.routing) or obs.routing is None:
        return Decision(state.replace(message="promoting: routing all traffic to primary"),
                        (SetRouting(PRIMARY_ONLY),), command_consumed=consumed, requeue_after=0)
    if obs.canary.spec_replicas != 0:
        return Decision(state.replace(message="promoting: scaling canary down"), (ScaleCanary(0),),
                        command_consumed=consumed, requeue_after=0)
    history = (*state.history, Revision(state.revision, target, obs.now))[-history_limit:]
    done = state.replace(phase=Phase.IDLE, primary_hash=target, failed_hash=None, weight=0, matches=(),
                         stage_name="", history=history, message=f"revision {state.revision} promoted")
    return Decision(done, (RecordRevision(state.revision, target),),
                    (Emit("Promoted", f"revision {state.revision} ({target}) promoted to primary"),),
                    command_consumed=consumed)


def _rolling_back(state: ReleaseState, obs: Observation, _: int) -> Decision:
    consumed = obs.command is not None
    if sends_to_canary(obs.routing):
        return Decision(state, (SetRouting(PRIMARY_ONLY),), command_consumed=consumed, requeue_after=0)
    if obs.canary.spec_replicas != 0:
        return Decision(state, (ScaleCanary(0),), command_consumed=consumed, requeue_after=0)
    done = state.replace(phase=Phase.ROLLED_BACK, failed_hash=state.canary_hash, weight=0, matches=(),
                         stage_name="")
    return Decision(done, (), (Emit("RolledBack", f"revision {state.revision} rolled back: {state.message}",
                                    warning=True),), command_consumed=consumed)


def _finalize(state: ReleaseState, obs: Observation) -> Decision:
    events: tuple[Emit, ...] = ()
    if state.phase is not Phase.FINALIZING:
        if state.phase is Phase.INVALID and not obs.primary.exists:
            return Decision(None, (ForgetRelease(),))  # nothing was ever created
        state = state.replace(phase=Phase.FINALIZING, message="opt-out: handing traffic back to the Deployment")
        events = (Emit("OptOut", state.message),)
    if obs.canary.spec_replicas != state.replicas:
        return Decision(state, (ScaleCanary(state.replicas),), events, requeue_after=WAIT_POLL_SECONDS)
    if not obs.canary.rolled_out:
        # Primary keeps serving until the Deployment's own pods are ready: no request is dropped.
        return Decision(state.replace(message=f"opt-out: waiting for {obs.canary.ready}/{state.replicas} ready"),
                        (), events, requeue_after=WAIT_POLL_SECONDS)
    return Decision(None, (FinalizeRoutes(), DeletePrimary(), ForgetRelease()), events)


def _invalid(state: ReleaseState, obs: Observation) -> Decision:
    message = obs.config_error or ""
    if state.phase is Phase.INVALID and state.message == message:
        return Decision(state, command_consumed=obs.command is not None)
    resume = state.resume_phase if state.phase is Phase.INVALID else state.phase
    invalid = state.replace(phase=Phase.INVALID, resume_phase=resume, message=message)
    return Decision(invalid, (), (Emit("InvalidConfig", message, warning=True),),
                    command_consumed=obs.command is not None)


# --- shared transitions --------------------------------------------------------------------------------


def _operator_or_alert(state: ReleaseState, obs: Observation) -> Decision | None:
    if obs.alert:
        return _to_rolling_back(state, f"alert firing: {obs.alert}", (), consumed=obs.command is not None)
    command = obs.command
    if command == "abort":
        return _to_rolling_back(state, "aborted by operator", (), consumed=True)
    if command in ("promote", "promote-full"):
        if command == "promote" and not _canary_ready(state, obs):
            return Decision(state.replace(message="promote refused: canary is not ready (use promote --full)"),
                            (), (Emit("PromoteRefused", "canary is not ready; use promote --full", warning=True),),
                            command_consumed=True)
        return _to_promoting(state, f"{command} by operator", (), consumed=True)
    if command is not None and command.startswith("undo"):
        message = "undo is for between releases: abort this release first (it rolls back to primary)"
        return Decision(state, (), (Emit("UndoRefused", message, warning=True),), command_consumed=True)
    if command == "pause" and state.phase is Phase.PROGRESSING:
        paused = state.replace(phase=Phase.PAUSED, paused_at=obs.now, message="paused by operator")
        return Decision(paused, (), (Emit("Paused", f"revision {state.revision} paused"),), command_consumed=True)
    return None


def _to_promoting(state: ReleaseState, why: str, actions: tuple[Action, ...] | list[Action],
                  consumed: bool = False) -> Decision:
    promoting = state.replace(phase=Phase.PROMOTING, paused_at=None, message=f"promoting: {why}",
                              stage_name="promoting")
    event = Emit("Promoting", f"revision {state.revision}: {why}")
    return Decision(promoting, (*actions, EnsurePrimary(state.canary_hash or "", state.replicas)), (event,),
                    command_consumed=consumed, requeue_after=0)


def _to_rolling_back(state: ReleaseState, why: str, actions: tuple[Action, ...] | list[Action],
                     consumed: bool = False) -> Decision:
    back = state.replace(phase=Phase.ROLLING_BACK, paused_at=None, message=why, stage_name="rolling back")
    # Traffic leaves the canary first; scaling down happens once the router reads back primary-only.
    kept = [a for a in actions if not isinstance(a, SetRouting | ScaleCanary)]
    return Decision(back, (*kept, SetRouting(PRIMARY_ONLY)),
                    (Emit("RollingBack", f"revision {state.revision}: {why}", warning=True),),
                    command_consumed=consumed, requeue_after=0)


def _restart(state: ReleaseState, obs: Observation) -> Decision:
    restarted = state.replace(phase=Phase.IDLE, message="template changed during the release; restarting")
    decision = _start_release(restarted, obs, obs.canary.template_hash or "", obs.command is not None)
    events = (Emit("ReleaseSuperseded", f"revision {state.revision} superseded by a newer template"),
              *decision.events)
    return Decision(decision.state, decision.actions, events, decision.command_consumed, decision.requeue_after)


def _canary_ready(state: ReleaseState, obs: Observation) -> bool:
    return obs.canary.template_hash == state.canary_hash and obs.canary.rolled_out and obs.canary.spec_replicas > 0


def _idle_world(state: ReleaseState, obs: Observation) -> tuple[Action, ...]:
    """Between releases: primary runs the promoted template, all traffic on primary, canary at zero."""
    actions: list[Action] = []
    if state.primary_hash and (obs.primary.template_hash != state.primary_hash
                               or obs.primary.spec_replicas != state.replicas):
        actions.append(EnsurePrimary(state.primary_hash, state.replicas))
    if obs.routing is None:
        actions.append(EnsureRoutes())
    elif sends_to_canary(obs.routing):
        actions.append(SetRouting(PRIMARY_ONLY))
    if obs.canary.spec_replicas != 0 and not sends_to_canary(obs.routing):
        actions.append(ScaleCanary(0))
    return tuple(actions)


def _wait(state: ReleaseState, message: str, consumed: bool = False) -> Decision:
    return Decision(state.replace(message=message), (), command_consumed=consumed, requeue_after=WAIT_POLL_SECONDS)


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

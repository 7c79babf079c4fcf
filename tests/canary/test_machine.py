"""The release state machine, branch by branch (pure: no cluster, no clock)."""

from __future__ import annotations

from adapters.base import Match, Routing
from analysis.model import Outcome
from canary.actions import EnsurePrimary, EnsureRoutes, ForgetRelease, ScaleCanary, SetRouting
from canary.alerts import Alert
from canary.config import Step
from canary.machine import decide
from canary.state import Phase, ReleaseState
from tests.canary.world import World


def initialized(primary_delay: float = 0.0, **kw: object) -> World:
    world = World(**kw)  # type: ignore[arg-type]
    world.settle()
    world.primary_delay = primary_delay  # a slow primary, from the first release on
    assert world.state is not None and world.state.phase is Phase.IDLE
    return world


def start_release(world: World, new_hash: str = "v2") -> None:
    world.user_hash = new_hash
    world.step()


# --- opt-in -------------------------------------------------------------------------------------------


def test_opt_in_creates_primary_then_routes_then_scales_canary_to_zero() -> None:
    world = World()
    world.settle()
    assert world.log[:4] == ["EnsurePrimary", "EnsureRoutes", "ScaleCanary", "RecordRevision"]
    assert world.primary_hash == "v1" and world.primary_replicas == 3
    assert world.user_replicas == 0
    assert world.routing == Routing(0)
    assert world.state is not None and world.state.phase is Phase.IDLE
    assert world.violations == []


def test_routes_wait_until_primary_is_ready() -> None:
    state = ReleaseState(phase=Phase.INITIALIZING, replicas=3, primary_hash="v1")
    world = World(primary_hash="v1", primary_replicas=3, primary_ready=1, state=state)
    decision = world.step()
    assert decision.actions == ()
    assert "waiting for primary" in world.state.message  # type: ignore[union-attr]


def test_opt_in_with_zero_replicas_keeps_one_replica() -> None:
    decision = decide(None, World(user_replicas=0).observe())
    assert decision.state is not None and decision.state.replicas == 1


# --- a release walks the ladder and promotes ----------------------------------------------------------


def test_template_change_walks_the_weight_ladder_and_promotes() -> None:
    world = initialized().with_steps(10, 25, 50)
    start_release(world)
    assert world.state.phase is Phase.PROGRESSING and world.state.revision == 1  # type: ignore[union-attr]
    world.run(60)
    weights = [a.routing.canary_weight for a in world.actions if isinstance(a, SetRouting)]
    assert weights == [10, 25, 50, 0]
    assert world.state.phase is Phase.IDLE  # type: ignore[union-attr]
    assert world.primary_hash == "v2" and world.user_replicas == 0 and world.routing == Routing(0)
    assert world.events.count("Promoted") == 1
    assert world.state.history[-1].template_hash == "v2"  # type: ignore[union-attr]
    assert world.violations == []


def test_each_step_is_held_for_its_duration() -> None:
    world = initialized().with_steps(10, 50, hold=30)
    start_release(world)
    world.run(25)
    assert world.routing == Routing(10)
    world.run(10)
    assert world.routing == Routing(50)


def test_promotion_updates_primary_before_routing_back_and_scales_canary_last() -> None:
    world = initialized().with_steps(50)
    start_release(world)
    world.run(30)
    tail = world.log[world.log.index("EnsurePrimary", 3):]
    assert tail == ["EnsurePrimary", "SetRouting", "ScaleCanary", "RecordRevision"]


def test_promotion_waits_for_primary_rollout() -> None:
    world = initialized().with_steps(50)
    start_release(world)
    world.run(11)
    world.state = world.state.replace(phase=Phase.PROMOTING)  # type: ignore[union-attr]
    world.primary_hash, world.primary_ready = "v2", 1  # rolling update in progress
    decision = world.step()
    assert decision.actions == () and world.routing == Routing(50)


def test_ab_stage_routes_matching_requests_only() -> None:
    match = Match(header="x-canary", value="always")
    world = initialized(steps=(Step(Routing(0, (match,)), 10, "ab"), Step(Routing(20), 10, "canary 20%")))
    start_release(world)
    world.run(5)
    assert world.routing == Routing(0, (match,))
    world.run(40)
    assert world.primary_hash == "v2"


# --- waiting, judging, holding -------------------------------------------------------------------------


def test_no_traffic_moves_before_the_canary_is_ready() -> None:
    world = initialized()
    world.canary_can_be_ready = False
    start_release(world)
    world.run(30)
    assert not any(isinstance(a, SetRouting) and a.routing.canary_weight for a in world.actions)
    assert "waiting for canary" in world.state.message  # type: ignore[union-attr]


def test_canary_never_ready_rolls_back_at_the_deadline() -> None:
    world = initialized(deadline=60.0)
    world.canary_can_be_ready = False
    start_release(world)
    world.run(55)
    assert world.state.phase is Phase.PROGRESSING  # type: ignore[union-attr]
    world.run(10)
    assert world.state.phase is Phase.ROLLED_BACK  # type: ignore[union-attr]
    assert "progress deadline" in world.state.message  # type: ignore[union-attr]
    assert world.user_replicas == 0 and world.primary_hash == "v1"


def test_failing_verdict_rolls_back_routing_first_then_scales_down() -> None:
    world = initialized().with_steps(10, 50)
    start_release(world)
    world.run(3)
    assert world.routing == Routing(10)
    world.verdict = Outcome.FAIL
    world.run(3)
    assert world.state.phase is Phase.ROLLED_BACK  # type: ignore[union-attr]
    tail = world.log[-2:]
    assert tail == ["SetRouting", "ScaleCanary"]
    assert world.routing == Routing(0) and world.user_replicas == 0
    assert world.state.failed_hash == "v2"  # type: ignore[union-attr]
    assert world.violations == []


def test_rolled_back_template_is_not_released_again_until_it_changes() -> None:
    world = initialized().with_steps(10)
    start_release(world)
    world.verdict = Outcome.FAIL
    world.run(5)
    world.verdict = Outcome.PASS
    world.run(30)
    assert world.state.phase is Phase.ROLLED_BACK and world.user_replicas == 0  # type: ignore[union-attr]
    start_release(world, "v3")
    assert world.state.phase is Phase.PROGRESSING and world.state.revision == 2  # type: ignore[union-attr]


def test_retry_releases_the_failed_template_again() -> None:
    world = initialized().with_steps(10)
    start_release(world)
    world.verdict = Outcome.FAIL
    world.run(5)
    world.verdict = Outcome.PASS
    world.command = "retry"
    world.step()
    assert world.state.phase is Phase.PROGRESSING and world.command is None  # type: ignore[union-attr]


def test_nodata_holds_the_step_and_the_deadline_decides() -> None:
    world = initialized(deadline=30.0).with_steps(10, 50)
    start_release(world)
    world.verdict = Outcome.NODATA
    world.run(20)
    assert world.routing == Routing(10)
    assert "holding" in world.state.message  # type: ignore[union-attr]
    world.run(20)
    assert world.state.phase is Phase.ROLLED_BACK  # type: ignore[union-attr]


def test_continue_verdict_advances_after_the_hold() -> None:
    world = initialized().with_steps(10, 50)
    world.verdict = Outcome.CONTINUE
    start_release(world)
    world.run(15)
    assert world.routing == Routing(50)


def test_no_verdict_yet_holds() -> None:
    world = initialized().with_steps(10, 50)
    world.verdict = None
    start_release(world)
    world.run(30)
    assert world.routing == Routing(10)


def test_canary_losing_all_ready_pods_routes_to_primary_and_rolls_back() -> None:
    world = initialized().with_steps(10, 50, hold=100)
    start_release(world)
    world.run(5)
    world.canary_ready = 0
    world.step()
    assert world.routing == Routing(0)
    world.settle()
    assert world.state.phase is Phase.ROLLED_BACK  # type: ignore[union-attr]


# --- people and alerts ---------------------------------------------------------------------------------


def test_abort_rolls_back_at_once() -> None:
    world = initialized().with_steps(10, 50, hold=100)
    start_release(world)
    world.run(5)
    world.command = "abort"
    world.settle()
    assert world.state.phase is Phase.ROLLED_BACK and world.command is None  # type: ignore[union-attr]
    assert world.routing == Routing(0) and world.user_replicas == 0
    assert world.state.message == "aborted by operator"  # type: ignore[union-attr]


def test_promote_skips_the_remaining_steps() -> None:
    world = initialized().with_steps(10, 25, 50, hold=100)
    start_release(world)
    world.run(5)
    world.command = "promote"
    world.settle()
    assert world.primary_hash == "v2" and world.state.phase is Phase.IDLE  # type: ignore[union-attr]
    weights = [a.routing.canary_weight for a in world.actions if isinstance(a, SetRouting)]
    assert weights == [10, 0]


def test_promote_is_refused_while_the_canary_is_not_ready_but_full_promote_goes() -> None:
    world = initialized()
    world.canary_can_be_ready = False
    start_release(world)
    world.command = "promote"
    world.step()
    assert world.state.phase is Phase.PROGRESSING and world.command is None  # type: ignore[union-attr]
    world.command = "promote-full"
    world.step()
    assert world.state.phase is Phase.PROMOTING  # type: ignore[union-attr]


def test_pause_holds_traffic_and_stops_the_clock_resume_continues() -> None:
    world = initialized().with_steps(10, 50, hold=20)
    start_release(world)
    world.run(10)
    world.command = "pause"
    world.run(100)
    assert world.state.phase is Phase.PAUSED and world.routing == Routing(10)  # type: ignore[union-attr]
    world.command = "resume"
    world.run(5)
    assert world.routing == Routing(10)  # 10 s of the step were left
    world.run(10)
    assert world.routing == Routing(50)


def test_matching_alert_rolls_back() -> None:
    world = initialized().with_steps(10, 50, hold=100)
    start_release(world)
    world.run(5)
    world.alerts = (Alert("firing", {"alertname": "CanaryErrors"}, received_at=world.now),)
    world.settle()
    assert world.state.phase is Phase.ROLLED_BACK  # type: ignore[union-attr]
    assert "CanaryErrors" in world.state.message  # type: ignore[union-attr]


def test_commands_outside_a_release_are_consumed_and_change_nothing() -> None:
    world = initialized()
    world.command = "abort"
    decision = world.step()
    assert decision.command_consumed and decision.actions == ()


# --- changes during a release -------------------------------------------------------------------------


def test_new_template_mid_release_restarts_from_the_first_step_with_traffic_off_first() -> None:
    world = initialized().with_steps(10, 50, hold=10)
    start_release(world)
    world.run(15)
    assert world.routing == Routing(50)
    world.user_hash = "v3"
    decision = world.step()
    assert isinstance(decision.actions[0], SetRouting) and decision.actions[0].routing == Routing(0)
    assert world.state.revision == 2 and world.state.canary_hash == "v3"  # type: ignore[union-attr]
    world.run(40)
    assert world.primary_hash == "v3"


def test_user_scaling_between_releases_resizes_primary() -> None:
    world = initialized()
    world.user_replicas = 5
    world.settle()
    assert world.primary_replicas == 5 and world.user_replicas == 0


def test_stray_canary_traffic_between_releases_is_removed() -> None:
    world = initialized()
    world.routing = Routing(30)
    world.step()
    assert world.routing == Routing(0)


# --- invalid config and opt-out ------------------------------------------------------------------------


def test_invalid_config_changes_nothing_and_warns_once() -> None:
    world = World(config_error="weir.dev/rollout.router: unknown value. Fix: use nginx")
    world.step()
    world.step()
    assert world.actions == []
    assert world.state.phase is Phase.INVALID  # type: ignore[union-attr]
    assert world.events == ["InvalidConfig"]


def test_invalid_config_mid_release_moves_traffic_to_primary_keeps_the_canary_and_resumes_when_fixed() -> None:
    world = initialized().with_steps(10, 50, hold=10)
    start_release(world)
    world.run(3)
    assert world.routing == Routing(10)
    world.config_error = "bad"
    world.run(30)
    assert world.routing == Routing(0) and world.state.phase is Phase.INVALID  # type: ignore[union-attr]
    assert world.user_replicas == 3  # the canary keeps running, so fixing the config resumes the release
    assert world.events.count("InvalidConfig") == 1
    world.config_error = None
    world.step()
    assert world.state.phase is Phase.PROGRESSING  # type: ignore[union-attr]
    world.step()
    assert world.routing == Routing(10)  # the step is applied again, and its hold starts over
    world.run(60)
    assert world.primary_hash == "v2" and world.violations == []


def test_an_alert_while_the_config_is_invalid_still_rolls_the_release_back() -> None:
    world = initialized().with_steps(10, 50, hold=10)
    start_release(world)
    world.run(3)
    world.config_error = "bad"
    world.step()
    world.alerts = (Alert("firing", {"alertname": "Anything"}, received_at=world.now),)
    world.settle()
    assert world.state.phase is Phase.INVALID and world.state.resume_phase is Phase.ROLLED_BACK  # type: ignore[union-attr]
    assert world.user_replicas == 0 and world.primary_hash == "v1" and world.alerts == ()
    assert "RolledBack" in world.events


def test_opt_out_scales_the_deployment_back_before_handing_traffic_over() -> None:
    world = initialized()
    world.enabled = False
    world.settle()
    assert world.log[-4:] == ["ScaleCanary", "FinalizeRoutes", "DeletePrimary", "ForgetRelease"]
    assert world.user_replicas == 3 and world.primary_hash is None and world.state is None


def test_opt_out_waits_while_the_deployment_is_not_ready() -> None:
    world = initialized()
    world.enabled = False
    world.canary_can_be_ready = False
    world.run(5)
    assert world.primary_hash == "v1" and "waiting" in world.state.message  # type: ignore[union-attr]


def test_opt_out_of_an_invalid_never_initialized_deployment_forgets_it() -> None:
    world = World(config_error="bad")
    world.step()
    world.enabled = False
    decision = world.step()
    assert decision.actions == (ForgetRelease(),) and decision.state is None


def test_not_enabled_and_never_managed_does_nothing() -> None:
    assert decide(None, World(enabled=False).observe()).actions == ()


# --- invariants over many random releases ---------------------------------------------------------------


def test_random_releases_never_send_traffic_to_an_unready_canary() -> None:
    import random

    rng = random.Random(7)
    for _ in range(200):
        world = initialized(deadline=rng.choice([20.0, 60.0])).with_steps(10, 50, hold=rng.choice([3.0, 10.0]))
        start_release(world, f"v{rng.randrange(2, 9)}")
        for _ in range(60):
            world.verdict = rng.choice([Outcome.PASS, Outcome.CONTINUE, Outcome.NODATA, Outcome.FAIL, None])
            if rng.random() < 0.1:
                world.canary_ready = rng.choice([0, 1, world.user_replicas])
            if rng.random() < 0.05:
                world.command = rng.choice(["abort", "promote", "pause", "resume", "promote-full"])
            if rng.random() < 0.03:
                world.user_hash = f"v{rng.randrange(2, 9)}"
            world.step()
            world.now += rng.choice([0.5, 1.0, 5.0])
        assert world.violations == [], world.violations


def test_every_action_kind_is_reachable() -> None:
    kinds = set()
    world = initialized().with_steps(10)
    start_release(world)
    world.run(30)
    world.enabled = False
    world.settle()
    kinds = {type(a) for a in world.actions}
    assert {EnsurePrimary, EnsureRoutes, ScaleCanary, SetRouting, ForgetRelease} <= kinds


# --- undo ------------------------------------------------------------------------------------------


def test_undo_releases_the_previous_revision_again_progressively() -> None:
    world = initialized().with_steps(10, 50)
    start_release(world)
    world.run(30)
    assert world.primary_hash == "v2" and world.kept == {0: "v1", 1: "v2"}
    world.command = "undo"
    world.step()
    assert world.user_hash == "v1" and world.command is None
    world.step()
    assert world.state.phase is Phase.PROGRESSING and world.state.revision == 2  # type: ignore[union-attr]
    world.run(30)
    assert world.primary_hash == "v1" and world.state.phase is Phase.IDLE  # type: ignore[union-attr]
    weights = [a.routing.canary_weight for a in world.actions if isinstance(a, SetRouting)]
    assert weights == [10, 50, 0, 10, 50, 0]  # the old version went through the ladder too


def test_undo_to_a_named_revision_and_refusals() -> None:
    world = initialized().with_steps(10)
    for version in ("v2", "v3"):
        start_release(world, version)
        world.run(20)
    world.command = "undo:7"
    world.step()
    assert world.user_hash == "v3" and "kept: 0, 1, 2" in world.state.message  # type: ignore[union-attr]
    assert world.events[-1] == "UndoRefused"
    world.command = "undo:0"
    world.settle()
    assert world.user_hash == "v1"


def test_undo_during_a_release_is_refused() -> None:
    world = initialized().with_steps(10, 50, hold=100)
    start_release(world)
    world.run(5)
    world.command = "undo"
    world.step()
    assert world.command is None and world.user_hash == "v2" and world.events[-1] == "UndoRefused"
    assert world.state.phase is Phase.PROGRESSING  # type: ignore[union-attr]


def test_undo_after_a_rollback_sets_the_deployment_back_to_what_primary_serves() -> None:
    world = initialized().with_steps(10)
    start_release(world)
    world.run(20)  # v2 promoted
    start_release(world, "v3")
    world.verdict = Outcome.FAIL
    world.run(5)
    world.verdict = Outcome.PASS
    assert world.state.phase is Phase.ROLLED_BACK  # type: ignore[union-attr]
    world.command = "undo"
    world.settle()
    assert world.user_hash == "v2" and world.primary_hash == "v2"
    assert world.state.revision == 2 and world.state.failed_hash is None  # type: ignore[union-attr]
    assert world.user_replicas == 0  # nothing to release: primary already runs it


# --- faults and human actions mid-release (never stuck, never exposed) ----------------------------------


def mid_release(**kw: object) -> World:
    world = initialized(**kw).with_steps(10, 50, hold=10)
    start_release(world)
    world.run(3)
    assert world.routing == Routing(10)
    return world


def test_rollback_never_scales_the_canary_down_while_the_router_is_unreadable() -> None:
    world = mid_release(deadline=30.0)
    world.router_readable = False
    world.verdict = Outcome.FAIL
    world.run(20)
    assert world.state.phase is Phase.ROLLING_BACK and world.user_replicas == 3  # type: ignore[union-attr]
    world.run(20)
    assert world.state.phase is Phase.DEGRADED  # type: ignore[union-attr]
    assert "cannot confirm all traffic is on primary" in world.state.message  # type: ignore[union-attr]
    assert "Degraded" in world.events and world.user_replicas == 3
    world.router_readable = True
    world.run(5)
    assert world.state.phase is Phase.ROLLED_BACK and world.routing == Routing(0)  # type: ignore[union-attr]
    assert world.user_replicas == 0 and "Recovered" in world.events and world.violations == []


def test_promotion_waits_for_a_read_back_of_primary_only() -> None:
    world = mid_release()
    while world.state.phase is not Phase.PROMOTING:  # type: ignore[union-attr]
        world.now += 1
        world.step()
    world.router_readable = False
    world.run(40)
    assert world.state.phase is Phase.PROMOTING and world.user_replicas == 3  # type: ignore[union-attr]
    world.router_readable = True
    world.run(5)
    assert world.state.phase is Phase.IDLE and world.primary_hash == "v2"  # type: ignore[union-attr]
    assert world.violations == []


def test_deleted_routes_are_recreated_mid_release_and_the_step_applied_again() -> None:
    world = mid_release()
    world.routing = None  # e.g. the canary Ingress was deleted
    decision = world.step()
    assert EnsureRoutes(repair=True) in decision.actions and world.routing == Routing(0)
    world.step()
    assert world.routing == Routing(10)
    world.run(40)
    assert world.primary_hash == "v2" and world.violations == []


def test_a_step_the_router_cannot_take_is_rolled_back_at_the_deadline() -> None:
    world = mid_release(deadline=30.0)
    world.run(8)  # now at 50%
    world.router_readable = False
    world.run(10)
    world.router_readable = True
    world.run(1)
    world.router_readable = False
    world.state = world.state.replace(step_started_at=world.now)  # type: ignore[union-attr]
    world.routing = Routing(20)  # someone edited the weight; the router then stops answering
    world.run(35)
    assert world.state.phase in (Phase.ROLLING_BACK, Phase.DEGRADED)  # type: ignore[union-attr]
    assert world.user_replicas == 3  # not scaled down blind
    world.router_readable = True
    world.run(5)
    assert world.state.phase is Phase.ROLLED_BACK and world.violations == []  # type: ignore[union-attr]


def test_a_promotion_that_cannot_finish_is_rolled_back_at_the_deadline() -> None:
    world = mid_release(deadline=30.0, primary_delay=10_000.0)
    world.run(60)
    assert world.state.phase is Phase.ROLLED_BACK  # type: ignore[union-attr]
    assert "promotion made no progress" in world.state.message  # type: ignore[union-attr]
    assert world.primary_hash == "v1" and world.routing == Routing(0) and world.user_replicas == 0
    assert world.violations == []


def test_kubectl_scale_mid_release_sets_the_size_both_arms_converge_to() -> None:
    world = mid_release()
    world.user_replicas, world.canary_ready = 5, 5
    world.step()
    assert world.primary_replicas == 5 and world.user_replicas == 5
    world.run(40)
    assert world.state.phase is Phase.IDLE and world.state.replicas == 5  # type: ignore[union-attr]
    assert world.primary_hash == "v2" and world.primary_replicas == 5 and world.user_replicas == 0


def test_pausing_the_deployment_pauses_the_release_and_resuming_continues_it() -> None:
    world = mid_release()
    world.canary_paused = True
    world.run(100)
    assert world.state.phase is Phase.PAUSED and world.routing == Routing(10)  # type: ignore[union-attr]
    assert world.events.count("Paused") == 1
    world.command = "resume"  # the operator's resume cannot undo kubectl's pause
    world.step()
    assert world.state.phase is Phase.PAUSED and world.command is None  # type: ignore[union-attr]
    world.canary_paused = False
    world.step()
    assert world.state.phase is Phase.PROGRESSING and "Resumed" in world.events  # type: ignore[union-attr]
    world.run(5)
    assert world.routing == Routing(10)  # the clock was stopped: the step's hold is not over yet
    world.run(30)
    assert world.primary_hash == "v2" and world.violations == []


def test_a_template_change_while_the_deployment_is_paused_starts_paused_without_scaling() -> None:
    world = initialized().with_steps(10, hold=5)
    world.canary_paused = True
    start_release(world)
    assert world.state.phase is Phase.PAUSED and world.user_replicas == 0  # type: ignore[union-attr]
    world.canary_paused = False
    world.run(60)
    assert world.primary_hash == "v2" and world.violations == []


def test_a_paused_primary_holds_the_promotion_with_its_clock_stopped() -> None:
    world = mid_release(deadline=30.0, primary_delay=2.0)
    world.primary_paused = True
    world.run(200)
    assert world.state.phase is Phase.PROMOTING and "is paused" in world.state.message  # type: ignore[union-attr]
    assert world.events.count("PromotionHeld") == 1
    world.primary_paused = False
    world.run(10)
    assert world.state.phase is Phase.IDLE and world.primary_hash == "v2"  # type: ignore[union-attr]


def test_a_primary_that_never_becomes_ready_degrades_initialization_and_it_recovers() -> None:
    world = World(deadline=30.0, primary_delay=100.0)
    world.run(60)
    assert world.state.phase is Phase.DEGRADED and world.routing is None  # type: ignore[union-attr]
    assert "waiting for primary" in world.state.message and world.user_replicas == 3  # type: ignore[union-attr]
    world.run(60)
    assert world.state.phase is Phase.IDLE and "Recovered" in world.events  # type: ignore[union-attr]


def test_an_alert_recorded_before_the_release_began_is_not_about_it() -> None:
    world = initialized().with_steps(10, 50, hold=10)
    world.user_hash = "v2"
    world.alerts = (Alert("firing", {"alertname": "Old"}, received_at=world.now - 100),)
    world.run(40)
    assert world.primary_hash == "v2" and world.alerts == ()


def test_random_faults_and_human_actions_never_expose_traffic_and_always_settle() -> None:
    """A randomized world that can produce every fault the machine claims to handle: an unreadable
    router, deleted routes, a slow or paused primary, a paused Deployment, scaling, invalid configs,
    alerts, commands and new templates. Invariants hold at every action, and once the faults stop every
    release ends on primary within a bounded time."""
    import random

    rng = random.Random(11)
    for run in range(150):
        world = initialized(deadline=rng.choice([20.0, 60.0]), primary_delay=rng.choice([0.0, 3.0, 30.0]))
        world = world.with_steps(10, 50, hold=rng.choice([3.0, 10.0]))
        start_release(world, f"v{rng.randrange(2, 9)}")
        for _ in range(80):
            world.verdict = rng.choice([Outcome.PASS, Outcome.CONTINUE, Outcome.NODATA, Outcome.FAIL, None])
            roll = rng.random()
            if roll < 0.08:
                world.router_readable = not world.router_readable
            elif roll < 0.11:
                world.routing = None
            elif roll < 0.14:
                world.canary_paused = not world.canary_paused
            elif roll < 0.16:
                world.primary_paused = not world.primary_paused
            elif roll < 0.19:
                world.canary_ready = rng.choice([0, 1, world.user_replicas])
            elif roll < 0.21 and world.user_replicas:
                world.user_replicas = world.canary_ready = rng.choice([1, 2, 5])
            elif roll < 0.24:
                world.config_error = None if world.config_error else "weir.dev/rollout.router: bad. Fix: x"
            elif roll < 0.26:
                world.alerts = (Alert("firing", {"alertname": "A"}, received_at=world.now),)
            elif roll < 0.30:
                world.command = rng.choice(["abort", "promote", "pause", "resume", "promote-full", "undo"])
            elif roll < 0.32:
                world.user_hash = f"v{rng.randrange(2, 9)}"
            world.step()
            world.now += rng.choice([0.5, 1.0, 5.0])
        assert world.violations == [], (run, world.violations)
        # The faults stop: every release must end with its traffic on primary, whatever state it was in.
        world.router_readable, world.canary_paused, world.primary_paused = True, False, False
        world.config_error, world.canary_can_be_ready, world.verdict = None, True, Outcome.PASS
        for _ in range(200):
            if world.state is not None and world.state.phase is Phase.PAUSED:
                world.command = "resume"  # an operator's pause waits for the operator
            world.step()
            world.now += 2.0
        assert world.violations == [], (run, world.violations)
        assert world.state is not None and world.state.phase in (Phase.IDLE, Phase.ROLLED_BACK), \
            (run, world.state.phase, world.state.message)
        assert world.routing == Routing(0) and world.user_replicas == 0, (run, world.routing, world.user_replicas)

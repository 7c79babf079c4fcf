"""The state a release resumes from: the Deployment's annotation unless Weir's own copy on the primary
is newer (an old annotation written back by `kubectl rollout undo`, or one removed by hand)."""

from __future__ import annotations

from canary.state import Phase, ReleaseState, read_state, trusted_state


def test_the_annotation_wins_when_it_is_at_least_as_new_as_the_copy() -> None:
    annotated = ReleaseState(phase=Phase.PROGRESSING, revision=3, seq=12)
    kept = ReleaseState(phase=Phase.PROGRESSING, revision=3, seq=10)
    assert trusted_state(annotated, kept) == (annotated, "")
    assert trusted_state(annotated, None) == (annotated, "")


def test_an_older_annotation_is_not_trusted() -> None:
    stale = ReleaseState(phase=Phase.IDLE, revision=1, seq=7)
    kept = ReleaseState(phase=Phase.PROGRESSING, revision=2, seq=9)
    state, why = trusted_state(stale, kept)
    assert state == kept and "older copy" in why and "kubectl rollout undo" in why


def test_a_lost_annotation_is_restored_from_the_copy() -> None:
    kept = ReleaseState(phase=Phase.IDLE, revision=4, seq=20)
    state, why = trusted_state(None, kept)
    assert state == kept and "missing" in why


def test_the_state_round_trips_and_garbage_is_no_state() -> None:
    state = ReleaseState(phase=Phase.DEGRADED, blocked_phase=Phase.ROLLING_BACK, seq=3, router="nginx",
                         paused_by="deployment", phase_started_at=5.0)
    assert read_state(state.to_json()) == state
    for garbage in ("", "{", "[]", '{"phase": "Nope"}', '{"history": [1]}', '{"matches": 5}'):
        assert read_state(garbage) is None

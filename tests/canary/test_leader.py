"""Leader election: the pure decision exhaustively, then real candidates racing on one Lease."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from canary.leader import LeaderElector, Record, decide
from tests.conftest import KubeTarget
from tests.e2e.harness import wait_for

LEASE = 15.0
STAMP = "2026-11-23T16:00:00.000000Z"


def test_no_lease_yet_is_created_by_the_first_candidate() -> None:
    assert decide(None, 0.0, "a", LEASE, 100.0, STAMP) == Record("a", STAMP, 0)


def test_the_holder_renews_and_keeps_the_transition_count() -> None:
    assert decide(Record("a", "old", 3), 0.0, "a", LEASE, 100.0, STAMP) == Record("a", STAMP, 3)


@pytest.mark.parametrize("seen_for", [0.0, 1.0, LEASE - 0.01])
def test_a_lease_renewed_within_its_duration_is_left_alone(seen_for: float) -> None:
    assert decide(Record("b", "t", 3), 50.0, "a", LEASE, 50.0 + seen_for, STAMP) is None


@pytest.mark.parametrize("seen_for", [LEASE, LEASE + 100.0])
def test_a_lease_unchanged_for_its_duration_is_taken_over(seen_for: float) -> None:
    assert decide(Record("b", "t", 3), 50.0, "a", LEASE, 50.0 + seen_for, STAMP) == Record("a", STAMP, 4)


def test_a_released_lease_is_taken_at_once() -> None:
    assert decide(Record("", "t", 3), 50.0, "a", LEASE, 50.0, STAMP) == Record("a", STAMP, 4)


def test_bad_timings_are_refused() -> None:
    with pytest.raises(ValueError, match="retry < renew deadline < lease"):
        LeaderElector(client.ApiClient(), "ns", "lease", "a", lease_seconds=5, renew_deadline=6, retry_seconds=1)


class Candidate:
    def __init__(self, kube: KubeTarget, identity: str, lease_seconds: float) -> None:
        self.elector = LeaderElector(kube.api_client, kube.namespace, "weir-test", identity,
                                     lease_seconds=lease_seconds, renew_deadline=lease_seconds * 2 / 3,
                                     retry_seconds=0.1)
        self.started = threading.Event()
        self.thread = threading.Thread(target=self.elector.run, args=(self.started.set,), daemon=True)
        self.thread.start()

    def crash(self) -> None:
        """Stop campaigning without releasing, as a killed process would."""
        self.elector.stop()
        self.thread.join(5)


@pytest.fixture
def candidates(kube: KubeTarget, request: pytest.FixtureRequest) -> Iterator[list[Candidate]]:
    lease_seconds = getattr(request, "param", 1.5)
    running = [Candidate(kube, name, lease_seconds) for name in ("a", "b", "c")]
    yield running
    for candidate in running:
        candidate.crash()


def lease(kube: KubeTarget) -> client.V1Lease:
    return client.CoordinationV1Api(kube.api_client).read_namespaced_lease("weir-test", kube.namespace)


def leaders(candidates: list[Candidate]) -> list[Candidate]:
    return [c for c in candidates if c.elector.leading.is_set()]


def test_one_candidate_leads_and_a_standby_takes_over_only_after_the_lease_runs_out(
        kube: KubeTarget, candidates: list[Candidate]) -> None:
    wait_for(lambda: leaders(candidates), 10, "a leader")
    time.sleep(0.5)  # five retry periods of the others, who must all stay standbys
    first = leaders(candidates)
    assert len(first) == 1 and first[0].started.is_set()
    assert lease(kube).spec.holder_identity == first[0].elector.identity
    crashed_at = time.monotonic()
    first[0].crash()
    rest = [c for c in candidates if c is not first[0]]
    wait_for(lambda: leaders(rest), 10, "a standby to take over")
    taken_after = time.monotonic() - crashed_at
    assert len(leaders(rest)) == 1
    # The standby must have seen the record unchanged for a whole lease before taking it.
    assert taken_after >= 1.5 - 0.2, taken_after
    spec = lease(kube).spec
    assert spec.holder_identity == leaders(rest)[0].elector.identity
    assert spec.lease_transitions == 1


@pytest.mark.parametrize("candidates", [60.0], indirect=True)
def test_a_released_lease_passes_to_a_standby_at_once(kube: KubeTarget, candidates: list[Candidate]) -> None:
    wait_for(lambda: leaders(candidates), 10, "a leader")
    first = leaders(candidates)[0]
    first.crash()
    first.elector.release()  # a clean shutdown
    assert not first.elector.leading.is_set()
    rest = [c for c in candidates if c is not first]
    # The lease lasts 60 s: only the release lets a standby in within the deadline.
    wait_for(lambda: leaders(rest), 20, "a standby to take the released lease")
    assert lease(kube).spec.lease_transitions == 1

"""The sandbox's Deployment/ReplicaSet/pod controllers keep workloads and their status true."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import kubernetes
import pytest

from sandbox.apiserver import SandboxThread, WatchEvent
from sandbox.runtime import PodStatusReport, ReportSink
from sandbox.workloads.rollout import (
    ReplicaSetCounts,
    fenceposts,
    new_replicaset_annotations,
    new_replicaset_target,
    old_replicaset_targets,
    template_hash,
)

from .helpers import deployment, unique, wait_for

# The generated client's stubs ask for model objects; these tests send plain dicts, as the API allows.
client: Any = kubernetes.client

NEVER_READY = {"exec": {"command": ["false"]}}


@pytest.fixture(scope="module")
def sb() -> Iterator[SandboxThread]:
    with SandboxThread(ready_delay=0.05) as running:
        yield running


@pytest.fixture
def apps(sb: SandboxThread) -> Iterator[Any]:
    api_client = sb.api_client()
    yield client.AppsV1Api(api_client)
    api_client.close()


@pytest.fixture
def core(sb: SandboxThread) -> Iterator[Any]:
    api_client = sb.api_client()
    yield client.CoreV1Api(api_client)
    api_client.close()


@pytest.fixture
def ns(core: Any) -> str:
    name = unique("wl")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def status(apps: Any, ns: str, name: str) -> Any:
    return apps.read_namespaced_deployment_status(name, ns).status


def conditions(apps: Any, ns: str, name: str) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status(apps, ns, name).conditions or []}


def wait_complete(apps: Any, ns: str, name: str, replicas: int, timeout: float = 10) -> Any:
    def complete() -> Any:
        d = apps.read_namespaced_deployment(name, ns)
        s = d.status
        done = (s.observed_generation == d.metadata.generation and (s.updated_replicas or 0) == replicas
                and (s.available_replicas or 0) == replicas and (s.replicas or 0) == replicas)
        return d if done else None

    return wait_for(complete, timeout, f"deployment {name} complete with {replicas} replicas")


def new_template(apps: Any, ns: str, name: str, version: str, **container: Any) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "VERSION", "value": version}], **container}]}}}}
    apps.patch_namespaced_deployment(name, ns, patch)


@dataclass
class PodCounts:
    active: int  # not terminating
    ready: int  # active and Ready
    hashes: frozenset[str]  # pod-template-hash values among all pods, terminating ones included


@contextmanager
def observed_pods(sb: SandboxThread, ns: str, app: str) -> Iterator[list[PodCounts]]:
    """Every state the pods of `app` pass through, recorded on the store's loop after each change."""
    seen: list[PodCounts] = []
    store = sb.store
    pods = store.registry.resource("", "pods")

    def record(event: WatchEvent) -> None:
        if event.store_key != pods.store_key or event.namespace != ns:
            return
        mine = [p for p in store.list(pods, ns) if (p["metadata"].get("labels") or {}).get("app") == app]
        active = [p for p in mine if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in active if any(c.get("type") == "Ready" and c.get("status") == "True"
                                          for c in (p.get("status") or {}).get("conditions") or [])]
        seen.append(PodCounts(len(active), len(ready),
                              frozenset(p["metadata"]["labels"].get("pod-template-hash", "") for p in mine)))

    sb.call(lambda: store.subscribe(record))
    try:
        yield seen
    finally:
        sb.call(lambda: store.unsubscribe(record))


# ----- the arithmetic, as the real controller does it


@pytest.mark.parametrize(("surge", "unavailable", "replicas", "expected"), [
    ("25%", "25%", 4, (1, 1)),
    ("50%", "50%", 3, (2, 1)),  # surge rounds up, unavailable rounds down
    ("25%", "25%", 1, (1, 0)),
    (0, "10%", 5, (0, 1)),  # both resolve to 0: unavailable becomes 1
    (2, 0, 10, (2, 0)),
])
def test_fenceposts_round_like_kubernetes(surge: Any, unavailable: Any, replicas: int,
                                          expected: tuple[int, int]) -> None:
    assert fenceposts(surge, unavailable, replicas) == expected


def test_new_replicaset_grows_within_surge_and_old_shrinks_within_unavailability() -> None:
    old = ReplicaSetCounts("old", 4, 4, "2026-01-01T00:00:00Z")
    assert new_replicaset_target(4, 1, None, [old]) == 1
    new = ReplicaSetCounts("new", 1, 0, "2026-01-01T00:01:00Z")
    # 5 pods exist; 4 available; min available 3: one old pod may go, not more.
    assert old_replicaset_targets(4, 1, new, [old]) == {"old": 3}
    # Unavailable old pods are dropped first, at no cost to availability.
    sick = ReplicaSetCounts("old", 4, 2, "2026-01-01T00:00:00Z")
    assert old_replicaset_targets(4, 1, ReplicaSetCounts("new", 1, 1, "t"), [sick]) == {"old": 2}


def test_template_hash_is_stable_and_ignores_its_own_label() -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}
    labelled = {"metadata": {"labels": {"app": "web", "pod-template-hash": "zzz"}}, "spec": template["spec"]}
    assert template_hash(template) == template_hash(labelled)
    assert template_hash(template) != template_hash({**template, "spec": {"containers": [{"name": "b"}]}})


# ----- the controllers


def test_ready_deployment_status_and_ownership(apps: Any, core: Any, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=3))
    d = wait_complete(apps, ns, "web", 3)
    s = d.status
    assert (s.replicas, s.updated_replicas, s.ready_replicas, s.available_replicas) == (3, 3, 3, 3)
    assert s.unavailable_replicas is None and s.observed_generation == d.metadata.generation
    assert conditions(apps, ns, "web") == {"Available": ("True", "MinimumReplicasAvailable"),
                                           "Progressing": ("True", "NewReplicaSetAvailable")}
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    [rs] = apps.list_namespaced_replica_set(ns).items
    assert rs.metadata.owner_references[0].uid == d.metadata.uid and rs.metadata.owner_references[0].controller
    pods = core.list_namespaced_pod(ns).items
    assert len(pods) == 3
    for pod in pods:
        assert pod.metadata.labels["pod-template-hash"] == rs.metadata.labels["pod-template-hash"]
        assert pod.metadata.owner_references[0].uid == rs.metadata.uid
        assert pod.status.phase == "Running" and pod.status.pod_ip
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
        assert pod.status.container_statuses[0].ready


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "max_active", "min_ready"), [
    (4, 1, 1, 5, 3),
    (3, "50%", "50%", 5, 2),
    (3, 0, 1, 3, 2),
    (2, 1, 0, 3, 2),
])
def test_rolling_update_stays_within_surge_and_unavailability(sb: SandboxThread, apps: Any, ns: str, replicas: int,
                                                               surge: Any, unavailable: Any, max_active: int,
                                                               min_ready: int) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    apps.create_namespaced_deployment(ns, deployment("web", replicas=replicas, strategy=strategy))
    wait_complete(apps, ns, "web", replicas)
    with observed_pods(sb, ns, "web") as seen:
        new_template(apps, ns, "web", "2")
        wait_complete(apps, ns, "web", replicas)
    assert seen, "no pod changes observed"
    assert max(s.active for s in seen) <= max_active
    assert min(s.ready for s in seen) >= min_ready
    assert any(len(s.hashes) == 2 for s in seen)  # old and new pods really overlapped
    if max_active > replicas:
        assert max(s.active for s in seen) > replicas  # the surge was used, not just respected
    final = seen[-1]
    assert len(final.hashes) == 1 and final.active == replicas


def test_recreate_stops_every_old_pod_before_starting_new_ones(sb: SandboxThread, apps: Any, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=3, strategy={"type": "Recreate"}))
    wait_complete(apps, ns, "web", 3)
    with observed_pods(sb, ns, "web") as seen:
        new_template(apps, ns, "web", "2")
        wait_complete(apps, ns, "web", 3)
    assert all(len(s.hashes) <= 1 for s in seen)
    assert min(s.active for s in seen) == 0


def test_never_ready_canary_exceeds_the_progress_deadline(apps: Any, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2, progressDeadlineSeconds=1))
    wait_complete(apps, ns, "web", 2)
    new_template(apps, ns, "web", "2", readinessProbe=NEVER_READY)
    wait_for(lambda: conditions(apps, ns, "web").get("Progressing") == ("False", "ProgressDeadlineExceeded"),
             timeout=8, what="ProgressDeadlineExceeded")
    s = status(apps, ns, "web")
    assert (s.updated_replicas or 0) >= 1 and (s.available_replicas or 0) >= 1  # old pods keep serving
    assert conditions(apps, ns, "web")["Available"] == ("True", "MinimumReplicasAvailable")


def test_never_ready_pods_are_running_but_not_ready(apps: Any, core: Any, ns: str) -> None:
    body = deployment("web", replicas=1)
    body["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {"exec": {"command": ["/bin/false"]}}
    apps.create_namespaced_deployment(ns, body)
    pod = wait_for(lambda: next((p for p in core.list_namespaced_pod(ns).items if p.status.phase == "Running"), None),
                   what="a running pod")
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "False"
    assert status(apps, ns, "web").ready_replicas is None


def test_scale_subresource_up_and_down_to_zero(apps: Any, core: Any, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=1))
    wait_complete(apps, ns, "web", 1)
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 3}})
    wait_complete(apps, ns, "web", 3)
    assert apps.read_namespaced_deployment_scale("web", ns).status.replicas == 3
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 0}})
    wait_for(lambda: not core.list_namespaced_pod(ns).items, what="all pods gone")
    d = wait_complete(apps, ns, "web", 0)
    assert d.status.replicas is None and conditions(apps, ns, "web")["Available"][0] == "True"


def test_paused_deployment_rolls_only_after_resume(apps: Any, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    wait_complete(apps, ns, "web", 2)
    apps.patch_namespaced_deployment("web", ns, {"spec": {"paused": True}})
    new_template(apps, ns, "web", "2")
    wait_for(lambda: conditions(apps, ns, "web").get("Progressing") == ("Unknown", "DeploymentPaused"),
             what="paused condition")
    assert len(apps.list_namespaced_replica_set(ns).items) == 1
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 3}})  # scaling still works
    wait_for(lambda: (status(apps, ns, "web").available_replicas or 0) == 3, what="three pods while paused")
    assert len(apps.list_namespaced_replica_set(ns).items) == 1
    apps.patch_namespaced_deployment("web", ns, {"spec": {"paused": False}})
    wait_complete(apps, ns, "web", 3)
    assert len(apps.list_namespaced_replica_set(ns).items) == 2


def test_min_ready_seconds_delays_availability(sb: SandboxThread, apps: Any, ns: str) -> None:
    observed: list[tuple[int, int]] = []
    store = sb.store
    deployments = store.registry.resource("apps", "deployments")

    def record(event: WatchEvent) -> None:
        if event.store_key == deployments.store_key and event.namespace == ns:
            s = event.object.get("status") or {}
            observed.append((s.get("readyReplicas", 0), s.get("availableReplicas", 0)))

    sb.call(lambda: store.subscribe(record))
    try:
        apps.create_namespaced_deployment(ns, deployment("web", replicas=2, minReadySeconds=1))
        wait_complete(apps, ns, "web", 2)
    finally:
        sb.call(lambda: store.unsubscribe(record))
    assert (2, 0) in observed  # ready, not yet available
    assert observed[-1] == (2, 2)


def test_deleted_pod_terminates_and_is_replaced(apps: Any, core: Any, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    wait_complete(apps, ns, "web", 2)
    victim = core.list_namespaced_pod(ns).items[0].metadata.name
    core.delete_namespaced_pod(victim, ns)
    wait_for(lambda: victim not in {p.metadata.name for p in core.list_namespaced_pod(ns).items},
             what="the deleted pod to disappear")
    wait_complete(apps, ns, "web", 2)
    assert len(core.list_namespaced_pod(ns).items) == 2


def test_revisions_and_history_limit(apps: Any, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=1, revisionHistoryLimit=1))
    wait_complete(apps, ns, "web", 1)
    for version in ("2", "3"):
        new_template(apps, ns, "web", version)
        wait_complete(apps, ns, "web", 1)
    d = apps.read_namespaced_deployment("web", ns)
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    wait_for(lambda: len(apps.list_namespaced_replica_set(ns).items) == 2, what="history trimmed to one old RS")
    revisions = sorted(rs.metadata.annotations["deployment.kubernetes.io/revision"]
                       for rs in apps.list_namespaced_replica_set(ns).items)
    assert revisions == ["2", "3"]


def test_deleting_a_deployment_removes_replicasets_and_pods(apps: Any, core: Any, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    wait_complete(apps, ns, "web", 2)
    apps.delete_namespaced_deployment("web", ns)
    wait_for(lambda: not core.list_namespaced_pod(ns).items and not apps.list_namespaced_replica_set(ns).items,
             what="cascading deletion")


def test_service_endpoints_list_ready_pods(apps: Any, core: Any, ns: str) -> None:
    core.create_namespaced_service(ns, {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    wait_complete(apps, ns, "web", 2)

    def addresses() -> int:
        subsets = core.read_namespaced_endpoints("web", ns).subsets or []
        return sum(len(s.addresses or []) for s in subsets)

    wait_for(lambda: addresses() == 2, what="two ready addresses")
    assert core.read_namespaced_endpoints("web", ns).subsets[0].ports[0].port == 8080
    discovery = client.DiscoveryV1Api(core.api_client)

    def slice_conditions() -> list[tuple[bool, bool, bool]]:
        [endpoint_slice] = discovery.list_namespaced_endpoint_slice(
            ns, label_selector="kubernetes.io/service-name=web").items
        return sorted((e.conditions.ready, e.conditions.serving, e.conditions.terminating)
                      for e in endpoint_slice.endpoints or [])

    wait_for(lambda: slice_conditions() == [(True, True, False)] * 2, what="two ready slice endpoints")
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 0}})
    wait_for(lambda: addresses() == 0, what="no addresses")
    wait_for(lambda: slice_conditions() == [], what="an empty slice")
    core.delete_namespaced_service("web", ns)
    wait_for(lambda: not discovery.list_namespaced_endpoint_slice(ns).items, what="the slice to go with the Service")


# ----- the runtime seam


class RecordingRuntime:
    """A stand-in for the process runtime: reports a port and a pod IP of its own."""

    def __init__(self, sink: ReportSink) -> None:
        self.sink = sink
        self.stopped: list[tuple[str, str, float]] = []

    async def start(self, pod: Any) -> None:
        meta = pod["metadata"]
        await self.sink(PodStatusReport(meta["namespace"], meta["name"], "Running", True, "127.0.0.2", 40123))

    async def stop(self, namespace: str, name: str, grace_seconds: float) -> None:
        self.stopped.append((namespace, name, grace_seconds))

    async def close(self) -> None:
        pass


def test_runtime_reports_become_pod_status_and_stop_gets_the_grace_period() -> None:
    runtimes: list[RecordingRuntime] = []

    def factory(sink: ReportSink) -> RecordingRuntime:
        runtimes.append(RecordingRuntime(sink))
        return runtimes[-1]

    with SandboxThread(runtime_factory=factory) as sb:
        api_client = sb.api_client()
        apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
        body = deployment("web", replicas=1)
        body["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 7
        apps.create_namespaced_deployment("default", body)
        wait_complete(apps, "default", "web", 1)
        pod = core.list_namespaced_pod("default").items[0]
        assert pod.status.pod_ip == "127.0.0.2"
        assert pod.metadata.annotations["sandbox.weir.dev/port"] == "40123"
        core.delete_namespaced_pod(pod.metadata.name, "default")
        wait_for(lambda: runtimes[0].stopped, what="the runtime to be asked to stop")
        assert runtimes[0].stopped[0] == ("default", pod.metadata.name, 7.0)
        api_client.close()


def test_new_replicaset_annotations_copy_but_never_remove_and_remember_a_replaced_revision() -> None:
    deployment_annotations = {"weir.dev/state": "new", "deployment.kubernetes.io/revision": "9",
                              "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    current = {"weir.dev/state": "old", "gone-from-the-deployment": "kept",
               "deployment.kubernetes.io/revision": "1", "deployment.kubernetes.io/desired-replicas": "2"}
    assert new_replicaset_annotations(deployment_annotations, current, 3) == {
        "weir.dev/state": "new", "gone-from-the-deployment": "kept", "deployment.kubernetes.io/revision": "3",
        "deployment.kubernetes.io/revision-history": "1", "deployment.kubernetes.io/desired-replicas": "2"}
    again = {**current, "deployment.kubernetes.io/revision": "3", "deployment.kubernetes.io/revision-history": "1"}
    assert new_replicaset_annotations({}, again, 5)["deployment.kubernetes.io/revision-history"] == "1,3"
    assert new_replicaset_annotations({}, again, 2) == again  # a revision is never lowered
    assert new_replicaset_annotations({"a": "b"}, {}, 1) == {"a": "b", "deployment.kubernetes.io/revision": "1"}

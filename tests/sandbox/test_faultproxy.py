"""The fault proxy, through the official client: transparent without faults, and each fault as specified."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from sandbox.apiserver import SandboxThread
from sandbox.faultproxy import FaultProxy, Faults, RequestKind, classify
from sandbox.kubeconfig import client_configuration

from .helpers import unique

client: Any = kubernetes.client  # plain-dict bodies, as the API allows (the stubs want model objects)


@pytest.fixture
def upstream() -> Iterator[SandboxThread]:
    with SandboxThread(workloads=False) as running:
        yield running


def api_for(url: str) -> Any:
    return client.ApiClient(client_configuration(url))


def namespace(upstream: SandboxThread) -> str:
    name = unique("proxy")
    with upstream.api_client() as api:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def config_map(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def raw(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.data))


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/namespaces/ns/pods", "", RequestKind("list", "pods")),
    ("GET", "/api/v1/namespaces/ns/pods/web-1", "", RequestKind("get", "pods")),
    ("GET", "/apis/apps/v1/namespaces/ns/deployments", "watch=true&resourceVersion=5",
     RequestKind("watch", "deployments")),
    ("GET", "/api/v1/watch/namespaces/ns/services", "", RequestKind("watch", "services")),
    ("PUT", "/apis/apps/v1/namespaces/ns/deployments/web/status", "", RequestKind("update", "deployments/status")),
    ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale", "", RequestKind("patch", "deployments/scale")),
    ("POST", "/api/v1/namespaces/ns/events", "", RequestKind("create", "events")),
    ("DELETE", "/apis/networking.k8s.io/v1/namespaces/ns/ingresses/web", "", RequestKind("delete", "ingresses")),
    ("DELETE", "/api/v1/namespaces/ns/configmaps", "", RequestKind("deletecollection", "configmaps")),
    ("GET", "/api/v1/namespaces/ns", "", RequestKind("get", "namespaces")),
    ("POST", "/api/v1/namespaces", "", RequestKind("create", "namespaces")),
    ("GET", "/apis/coordination.k8s.io/v1/leases", "watch=0", RequestKind("list", "leases")),
    ("GET", "/apis/apps/v1", "", RequestKind("get", "discovery")),
    ("GET", "/api", "", RequestKind("get", "discovery")),
    ("GET", "/version", "", RequestKind("get", "version")),
])
def test_requests_are_classified_by_verb_and_resource(method: str, path: str, query: str,
                                                      expected: RequestKind) -> None:
    assert classify(method, path, query) == expected


@pytest.mark.parametrize("faults", [dict(fail_ratio=1.5), dict(delay_ratio=-0.1), dict(delay_seconds=-1),
                                    dict(cut_watches_after=0.5), dict(cut_style="sometimes")])
def test_impossible_faults_are_refused(faults: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Faults\\."):
        Faults(**faults)


def test_without_faults_requests_and_answers_pass_through_unchanged(upstream: SandboxThread) -> None:
    ns = namespace(upstream)
    with FaultProxy(upstream.url) as proxy, api_for(proxy.url) as via_proxy, upstream.api_client() as direct:
        proxied, plain = client.CoreV1Api(via_proxy), client.CoreV1Api(direct)
        created = raw(proxied.create_namespaced_config_map(ns, config_map("settings", mode="fast"),
                                                           _preload_content=False))
        assert raw(plain.read_namespaced_config_map("settings", ns, _preload_content=False)) == created
        patched = raw(proxied.patch_namespaced_config_map("settings", ns, {"data": {"mode": "slow"}},
                                                          _preload_content=False))
        assert patched["data"] == {"mode": "slow"}
        assert raw(proxied.list_namespaced_config_map(ns, _preload_content=False))["items"] == [patched]
        assert raw(proxied.read_namespaced_config_map("settings", ns, _preload_content=False)) == \
            raw(plain.read_namespaced_config_map("settings", ns, _preload_content=False))
        with pytest.raises(ApiException) as missing:
            proxied.read_namespaced_config_map("absent", ns)
        assert missing.value.status == 404
        assert json.loads(missing.value.body or "{}")["reason"] == "NotFound"
        assert proxy.injected() == {"failed": 0, "delayed": 0, "cut": 0}


def test_watch_streams_events_through_the_proxy(upstream: SandboxThread) -> None:
    ns = namespace(upstream)
    with FaultProxy(upstream.url) as proxy, api_for(proxy.url) as via_proxy, upstream.api_client() as direct:
        stream = client.CoreV1Api(via_proxy).list_namespaced_config_map(ns, watch=True, timeout_seconds=30,
                                                                         _preload_content=False)
        try:
            client.CoreV1Api(direct).create_namespaced_config_map(ns, config_map("first"))
            line = stream.readline()  # the event arrives while the stream stays open
        finally:
            stream.release_conn()
        event = json.loads(line)
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "first")


def test_with_every_request_failing_reads_get_500_or_503_with_a_status_body(upstream: SandboxThread) -> None:
    ns = namespace(upstream)
    with upstream.api_client() as direct:
        client.CoreV1Api(direct).create_namespaced_config_map(ns, config_map("settings"))
    with FaultProxy(upstream.url, Faults(fail_ratio=1.0), seed=3) as proxy, api_for(proxy.url) as via_proxy:
        core = client.CoreV1Api(via_proxy)
        codes = set()
        for _ in range(20):
            with pytest.raises(ApiException) as failed:
                core.read_namespaced_config_map("settings", ns)
            status = json.loads(failed.value.body or "{}")
            assert failed.value.status in (500, 503)
            assert status["kind"] == "Status" and status["status"] == "Failure"
            assert status["code"] == failed.value.status
            assert status["reason"] == {500: "InternalError", 503: "ServiceUnavailable"}[failed.value.status]
            codes.add(failed.value.status)
        assert codes == {500, 503}
        assert proxy.injected()["failed"] == 20


def test_a_failed_write_never_reaches_the_upstream(upstream: SandboxThread) -> None:
    ns = namespace(upstream)
    with FaultProxy(upstream.url, Faults(fail_ratio=1.0)) as proxy, api_for(proxy.url) as via_proxy, \
            upstream.api_client() as direct:
        with pytest.raises(ApiException):
            client.CoreV1Api(via_proxy).create_namespaced_config_map(ns, config_map("never"))
        assert client.CoreV1Api(direct).list_namespaced_config_map(ns).items == []


def test_the_same_seed_fails_the_same_requests(upstream: SandboxThread) -> None:
    ns = namespace(upstream)

    def outcomes(seed: int) -> list[int]:
        with FaultProxy(upstream.url, Faults(fail_ratio=0.5), seed=seed) as proxy, api_for(proxy.url) as api:
            core = client.CoreV1Api(api)
            seen = []
            for _ in range(30):
                try:
                    core.list_namespaced_config_map(ns)
                    seen.append(200)
                except ApiException as error:
                    seen.append(error.status)
            return seen

    first = outcomes(11)
    assert first == outcomes(11)
    assert 200 in first and {500, 503} & set(first)


def test_a_delayed_request_is_held_then_answered(upstream: SandboxThread) -> None:
    ns = namespace(upstream)
    with FaultProxy(upstream.url, Faults(delay_ratio=1.0, delay_seconds=0.5)) as proxy, \
            api_for(proxy.url) as via_proxy:
        started = time.monotonic()
        assert client.CoreV1Api(via_proxy).list_namespaced_config_map(ns).items == []
        assert time.monotonic() - started >= 0.5
        assert proxy.injected() == {"failed": 0, "delayed": 1, "cut": 0}


@pytest.mark.parametrize("style", ["end", "drop"])
def test_a_watch_is_cut_mid_stream_after_the_configured_time(upstream: SandboxThread, style: str) -> None:
    ns = namespace(upstream)
    faults = Faults(cut_watches_after=2.0, cut_style=style)  # type: ignore[arg-type]
    with FaultProxy(upstream.url, faults) as proxy, api_for(proxy.url) as via_proxy, \
            upstream.api_client() as direct:
        started = time.monotonic()
        stream = client.CoreV1Api(via_proxy).list_namespaced_config_map(ns, watch=True, timeout_seconds=120,
                                                                         _preload_content=False)
        client.CoreV1Api(direct).create_namespaced_config_map(ns, config_map("before-the-cut"))
        lines: list[bytes] = []
        broken = False
        try:
            for chunk in stream.stream(1024):
                lines.extend(line for line in chunk.splitlines() if line)
        except urllib3.exceptions.ProtocolError:
            broken = True
        finally:
            stream.release_conn()
        ended_after = time.monotonic() - started
    assert [json.loads(line)["object"]["metadata"]["name"] for line in lines] == ["before-the-cut"]
    assert broken == (style == "drop")  # a drop leaves the chunked body incomplete; an end closes it
    assert ended_after >= 1.0  # never sooner than the 1 s floor (the server's own timeout is 120 s)
    assert proxy.injected()["cut"] == 1


def test_counts_say_which_requests_were_made(upstream: SandboxThread) -> None:
    ns = namespace(upstream)
    with FaultProxy(upstream.url) as proxy, api_for(proxy.url) as via_proxy:
        core, apps = client.CoreV1Api(via_proxy), client.AppsV1Api(via_proxy)
        core.create_namespaced_config_map(ns, config_map("a"))
        core.read_namespaced_config_map("a", ns)
        core.read_namespaced_config_map("a", ns)
        core.patch_namespaced_config_map("a", ns, {"data": {"k": "v"}})
        core.list_namespaced_config_map(ns)
        apps.list_namespaced_deployment(ns)
        stream = core.list_namespaced_config_map(ns, watch=True, timeout_seconds=1, _preload_content=False)
        stream.read()
        core.delete_namespaced_config_map("a", ns)
        assert proxy.counts() == {
            ("create", "configmaps"): 1, ("get", "configmaps"): 2, ("patch", "configmaps"): 1,
            ("list", "configmaps"): 1, ("list", "deployments"): 1, ("watch", "configmaps"): 1,
            ("delete", "configmaps"): 1,
        }
        assert proxy.total() == 8 and proxy.total("get") == 2
        proxy.reset_counts()
        assert proxy.counts() == {} and proxy.total() == 0


def test_closing_the_proxy_ends_open_watch_streams(upstream: SandboxThread) -> None:
    ns = namespace(upstream)
    proxy = FaultProxy(upstream.url).start()
    with api_for(proxy.url) as via_proxy:
        stream = client.CoreV1Api(via_proxy).list_namespaced_config_map(ns, watch=True, timeout_seconds=120,
                                                                         _preload_content=False)
        proxy.close()
        with pytest.raises(urllib3.exceptions.ProtocolError):
            for _ in stream.stream(1024):
                pass
        stream.release_conn()

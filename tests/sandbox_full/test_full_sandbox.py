"""The real parts plugged into the API emulator: Deployments run as demo-app processes, nginx routes
Ingress traffic to their ready pods and follows every change through the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest

from sandbox.apiserver import Sandbox
from sandbox.dataplane import ClusterFollower, NginxDataPlane
from sandbox.kubeconfig import SANDBOX_TOKEN
from sandbox.loadgen import LoadGenerator, LoadSpec, send
from sandbox.process_runtime import ProcessRuntime
from sandbox.runtime import PodRuntime, ReportSink
from tests.sandbox_full.conftest import canary_ingress, ingress, service, wait_for

pytestmark = pytest.mark.real

HOST = "web.example.com"


class Api(Protocol):
    def __call__(self, method: str, path: str, body: Any = None) -> Awaitable[Any]: ...


@dataclass
class Cluster:
    api: Api
    plane: NginxDataPlane
    follower: ClusterFollower


def deployment(name: str, app: str, image: str, replicas: int) -> dict[str, Any]:
    container = {
        "name": "app", "image": image, "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 0.2},
        "lifecycle": {"preStop": {"sleep": {"seconds": 1}}},
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                 "template": {"metadata": {"labels": {"app": app}},
                              "spec": {"terminationGracePeriodSeconds": 10, "containers": [container]}}},
    }


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    def processes(sink: ReportSink) -> PodRuntime:
        return ProcessRuntime(sink, log_dir=tmp_path / "pods")

    async with Sandbox(directory=tmp_path / "api", runtime_factory=processes) as sandbox, \
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}) as session:

        async def api(method: str, path: str, body: Any = None) -> Any:
            content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
            async with session.request(method, sandbox.url + path, json=body,
                                       headers={"Content-Type": content_type}) as response:
                answer = await response.json()
                assert response.status < 300, answer
                return answer

        plane = NginxDataPlane(workdir=tmp_path / "nginx")
        await plane.start()
        follower = ClusterFollower(plane, sandbox.url, SANDBOX_TOKEN)
        following = asyncio.create_task(follower.run())
        try:
            yield Cluster(api, plane, follower)
        finally:
            following.cancel()
            with pytest.raises(asyncio.CancelledError):
                await following
            await plane.stop()


async def test_deployments_serve_through_nginx_and_routing_follows_the_api(cluster: Cluster) -> None:
    api = cluster.api
    await api("POST", "/apis/apps/v1/namespaces/default/deployments", deployment("web-primary", "web-primary",
                                                                                "demo:v1", 2))
    await api("POST", "/apis/apps/v1/namespaces/default/deployments", deployment("web", "web", "demo:v2", 1))
    for svc in (service("web-primary", {"app": "web-primary"}), service("web-canary", {"app": "web"})):
        await api("POST", "/api/v1/namespaces/default/services", svc)
    ingresses = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"
    await api("POST", ingresses, ingress("web", "web-primary"))
    await api("POST", ingresses, canary_ingress("web-canary", "web-canary", canary_by_header="x-canary"))
    await cluster.follower.wait_synced()

    async def routed(want: dict[str, int], **headers: str) -> bool:
        report = await send(cluster.plane.url + "/", 20, rate=400, headers={"Host": HOST, **headers})
        return report.by_version == want

    await wait_for(lambda: routed({"v2": 20}, **{"x-canary": "always"}), 30, "header traffic on the canary pod")
    await wait_for(lambda: routed({"v1": 20}), 30, "other traffic on the primary pods")
    primary_pods = await api("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb-primary")
    assert len(primary_pods["items"]) == 2

    await api("PATCH", ingresses + "/web-canary",
              {"metadata": {"annotations": {"nginx.ingress.kubernetes.io/canary-weight": "100"}}})
    await wait_for(lambda: routed({"v2": 20}), 30, "weight 100 on the canary")

    # Scaling the canary away under load: its pod leaves the endpoints, serves through preStop, drains.
    load = LoadGenerator(LoadSpec(cluster.plane.url + "/?delay_ms=50", rate=100, headers=(("Host", HOST),)))
    running = asyncio.create_task(load.run())
    await api("PATCH", "/apis/apps/v1/namespaces/default/deployments/web", {"spec": {"replicas": 0}})
    await wait_for(lambda: routed({"v1": 20}), 30, "traffic back on the primary")

    async def canary_gone() -> bool:
        pods = await api("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")
        return not pods["items"]

    await wait_for(canary_gone, 30, "the canary pod to terminate")
    load.stop()
    report = await running
    assert report.failed == 0, report.to_json()
    assert set(report.by_version) == {"v1", "v2"}

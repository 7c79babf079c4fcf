"""The full sandbox: the API emulator with pods as real processes, nginx as the ingress data plane, a real
Prometheus scraping every pod and evaluating the example alert rules, and a real Alertmanager routing
to Weir's webhook. Everything listens on 127.0.0.1 only and is stopped by PID on close.

    async with FullSandbox(webhook_url=..., webhook_token=...) as full:
        full.kubeconfig_path, full.ingress_url, full.prometheus.url, full.alertmanager.url
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from sandbox.alertmanager_server import EXAMPLE_RULES, AlertmanagerServer, Webhook
from sandbox.apiserver import Sandbox
from sandbox.dataplane import ClusterFollower, NginxDataPlane
from sandbox.process_runtime import ProcessRuntime
from sandbox.prometheus_server import PrometheusServer
from sandbox.workloads.pods import PORT_ANNOTATION

log = logging.getLogger("weir.sandbox.full")

TARGETS = "pods"
DISCOVERY_PERIOD_SECONDS = 0.5


def scrape_targets(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """file_sd groups for every running pod that serves on a known port, labelled the way a typical
    kubernetes_sd relabelling would: namespace, pod, and the owning Deployment."""
    groups = []
    for pod in sorted(pods, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])):
        meta = pod["metadata"]
        port = (meta.get("annotations") or {}).get(PORT_ANNOTATION)
        if not port or meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") != "Running":
            continue
        groups.append({"targets": [f"127.0.0.1:{port}"],
                       "labels": {"namespace": meta["namespace"], "pod": meta["name"],
                                  "deployment": deployment_of(pod)}})
    return groups


def deployment_of(pod: dict[str, Any]) -> str:
    meta = pod["metadata"]
    pod_hash = (meta.get("labels") or {}).get("pod-template-hash", "")
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == "ReplicaSet" and pod_hash and owner["name"].endswith("-" + pod_hash):
            return str(owner["name"][: -len(pod_hash) - 1])
        if owner.get("kind") == "Deployment":
            return str(owner["name"])
    return str(meta["name"].rsplit("-", 2)[0])


class FullSandbox:
    def __init__(self, *, directory: Path | None = None, webhook_url: str | None = None,
                 webhook_token: str | None = None, scrape_interval: str = "1s") -> None:
        self._temp = None if directory else tempfile.TemporaryDirectory(prefix="weir-full-")
        self.directory = Path(directory or self._temp.name)  # type: ignore[union-attr]
        self.webhook = Webhook(webhook_url, webhook_token) if webhook_url else None
        self.scrape_interval = scrape_interval
        self.api: Sandbox | None = None
        self.plane = NginxDataPlane(workdir=self.directory / "nginx")
        self.prometheus: PrometheusServer | None = None
        self.alertmanager: AlertmanagerServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def kubeconfig_path(self) -> Path:
        assert self.api is not None
        return self.api.kubeconfig_path

    @property
    def ingress_url(self) -> str:
        return self.plane.url

    async def start(self) -> FullSandbox:
        self.directory.mkdir(parents=True, exist_ok=True)
        logs = self.directory / "pods"
        self.api = Sandbox(directory=self.directory,
                           runtime_factory=lambda sink: ProcessRuntime(sink, log_dir=logs))
        await self.api.start()
        await self.plane.start()
        follower = ClusterFollower(self.plane, self.api.url)
        self._tasks.append(asyncio.create_task(follower.run()))
        await follower.wait_synced()
        if self.webhook is not None:
            self.alertmanager = AlertmanagerServer(self.webhook, workdir=self.directory / "alertmanager")
            await asyncio.to_thread(self.alertmanager.start)
        prometheus = PrometheusServer(
            workdir=self.directory / "prometheus",
            global_config={"scrape_interval": self.scrape_interval, "evaluation_interval": "1s"},
            rule_files={"examples.yaml": EXAMPLE_RULES.read_text()},
            alertmanagers=[self.alertmanager.address] if self.alertmanager else [])
        prometheus.write_targets(TARGETS, [])
        prometheus.scrape_configs = [prometheus.file_sd_job("pods", TARGETS, self.scrape_interval)]
        self.prometheus = prometheus
        await asyncio.to_thread(prometheus.start)
        self._tasks.append(asyncio.create_task(self._discover()))
        (self.directory / "endpoints.json").write_text(json.dumps(self.endpoints(), indent=2))
        return self

    def endpoints(self) -> dict[str, str]:
        return {
            "kubeconfig": str(self.kubeconfig_path),
            "ingress": self.ingress_url,
            "prometheus": self.prometheus.url if self.prometheus else "",
            "alertmanager": self.alertmanager.url if self.alertmanager else "",
        }

    async def _discover(self) -> None:
        """Keep Prometheus' file_sd in step with the pods (what kubernetes_sd does in a cluster)."""
        assert self.api is not None and self.prometheus is not None
        written: list[dict[str, Any]] | None = None
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(f"{self.api.url}/api/v1/pods") as response:
                        pods = (await response.json()).get("items") or []
                    groups = scrape_targets(pods)
                    if groups != written:
                        self.prometheus.write_targets(TARGETS, groups)
                        written = groups
                except (aiohttp.ClientError, OSError) as error:
                    log.warning("pod discovery failed", extra={"error": str(error)})
                await asyncio.sleep(DISCOVERY_PERIOD_SECONDS)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.api is not None:
            await self.api.close()  # stops every pod process
        with contextlib.suppress(Exception):
            await self.plane.stop()
        for server in (self.prometheus, self.alertmanager):
            if server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(server.stop)
        if self._temp is not None:
            self._temp.cleanup()

    async def __aenter__(self) -> FullSandbox:
        try:
            return await self.start()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

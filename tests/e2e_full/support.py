"""Helpers for end-to-end tests on the full sandbox (real pods, nginx, Prometheus, Alertmanager).

Each test gets its own example app (the demo's Deployment, Service and Ingress from `sandbox/demo.py`,
renamed so several live side by side on one Stack, each with its own host), steady load through
nginx on a thread, and ways to wait until the data plane really routes as the API says.
"""

from __future__ import annotations

import asyncio
import copy
import http.client
import json
import shutil
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from canary.annotations import ROLLOUT
from sandbox import demo
from sandbox.loadgen import LoadGenerator, LoadReport, LoadSpec, send
from sandbox.stack import Stack
from sandbox.workloads.pods import PORT_ANNOTATION
from tests.e2e.harness import App, create, wait_for

NAMESPACE = "default"
BINARIES = {"nginx": ("nginx", "/usr/sbin/nginx"), "prometheus": ("prometheus",),
            "prometheus-alertmanager": ("prometheus-alertmanager",)}


def missing_binaries() -> list[str]:
    """The real servers this directory needs that are not installed."""
    return [name for name, candidates in BINARIES.items()
            if not any(shutil.which(c) or (Path(c).is_absolute() and Path(c).exists()) for c in candidates)]


def real_parts_marks() -> list[pytest.MarkDecorator]:
    missing = missing_binaries()
    return [pytest.mark.e2e, pytest.mark.real,
            pytest.mark.skipif(bool(missing), reason=f"needs the real servers, missing: {', '.join(missing)} "
                               "(apt-get install nginx prometheus prometheus-alertmanager)")]


# --- the example app, renamed -----------------------------------------------------------------------


def host_of(name: str) -> str:
    return f"{name}.e2e.test"


def deployment(name: str, version: str, env: dict[str, str], rollout: dict[str, Any]) -> dict[str, Any]:
    """The demo's Deployment (two replicas, readiness probe, preStop, maxSurge 1 / maxUnavailable 0)
    under another name, with its own rollout configuration. `env` overrides the demo's baseline."""
    body = demo.deployment(version, env)
    meta = body["metadata"]
    meta["name"] = name
    meta["labels"] = {"app": name}
    meta["annotations"][ROLLOUT] = yaml.safe_dump(rollout)
    body["spec"]["selector"] = {"matchLabels": {"app": name}}
    body["spec"]["template"]["metadata"]["labels"] = {"app": name}
    return body


def service_and_ingress(name: str) -> list[dict[str, Any]]:
    """The demo's Service and Ingress, renamed to `name` and routing host `host_of(name)`."""
    _, service, ingress = copy.deepcopy(demo.app_objects())
    service["metadata"]["name"] = name
    service["spec"]["selector"] = {"app": name}
    ingress["metadata"]["name"] = name
    rule = ingress["spec"]["rules"][0]
    rule["host"] = host_of(name)
    rule["http"]["paths"][0]["backend"]["service"]["name"] = name
    return [service, ingress]


@dataclass
class ExampleApp:
    """One opted-in example app on the stack: `App` (tests/e2e/harness.py) for the API side, plus
    traffic through nginx with this app's Host header."""

    stack: Stack
    name: str
    rollout: dict[str, Any]
    baseline_env: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> App:
        return App(self.stack.api_client, NAMESPACE, self.name)

    @property
    def host(self) -> str:
        return host_of(self.name)

    def create(self, version: str = "1.0") -> ExampleApp:
        """Create Service, Ingress and Deployment and wait until Weir has opted it in."""
        for obj in [*service_and_ingress(self.name), deployment(self.name, version, self.baseline_env, self.rollout)]:
            create(self.stack.api_client, NAMESPACE, obj)
        self.api.wait_phase("Idle", timeout=60)
        wait_for(lambda: self.send(20).by_version == {version: 20}, 30, f"{self.name} {version} serving via nginx",
                 interval=0.2)
        return self

    def release(self, version: str, env: dict[str, str]) -> float:
        """Replace the pod template (a new version); returns time.monotonic() of the change. A JSON patch
        replaces it whole, where a strategic merge would keep env entries of the previous template."""
        template = deployment(self.name, version, {**self.baseline_env, **env}, self.rollout)["spec"]["template"]
        apps: Any = client.AppsV1Api(self.stack.api_client)
        started = time.monotonic()
        apps.patch_namespaced_deployment(self.name, NAMESPACE, [{"op": "replace", "path": "/spec/template",
                                                                 "value": template}])
        return started

    def send(self, count: int, rate: float = 400.0, headers: dict[str, str] | None = None,
             cookies: dict[str, str] | None = None) -> LoadReport:
        """`count` requests through nginx, every answer awaited."""
        return asyncio.run(send(self.stack.ingress_url + "/", count, rate,
                                headers={"Host": self.host, **(headers or {})}, cookies=cookies))

    def load(self, rate: float, headers: dict[str, str] | None = None,
             cookies: dict[str, str] | None = None) -> Load:
        return Load(LoadSpec(url=self.stack.ingress_url + "/", rate=rate,
                             headers=(("Host", self.host), *(headers or {}).items()),
                             cookies=tuple((cookies or {}).items())))

    def state(self) -> dict[str, Any]:
        return self.api.state()

    def weight(self) -> int:
        """The canary weight the canary Ingress carries (0 when there is none)."""
        return self.api.canary_weight() or 0

    def wait_weight(self, weight: int, timeout: float = 60.0) -> None:
        def reached() -> bool:
            state = self.state()
            if state.get("phase") in ("RollingBack", "RolledBack"):
                raise AssertionError(f"{self.name} rolled back while waiting for weight {weight}: {state}")
            return self.weight() == weight
        wait_for(reached, timeout, f"{self.name} canary weight {weight}")

    def wait_data_plane_weight(self, weight: int, timeout: float = 10.0) -> None:
        """Until nginx runs a configuration that splits this app's traffic `weight`% to the canary.
        (`apply` in sandbox/dataplane/nginx.py writes the file, reloads and waits for the old workers.)"""
        assert self.stack.full is not None
        plane = self.stack.full.plane
        line = f"{weight}% {self.name}-canary.{NAMESPACE}.svc;"

        def loaded() -> bool:
            return line in plane.config_text() and _served_generation(plane.workdir) >= plane.generation
        wait_for(loaded, timeout, f"nginx to split {weight}% of {self.host} to the canary", interval=0.02)

    def canary_pods(self) -> int:
        """Pods of the canary Deployment that still exist, terminating ones included."""
        core: Any = client.CoreV1Api(self.stack.api_client)
        pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"app={self.name}", _preload_content=False)
        return len(json.loads(pods.data).get("items") or [])


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("nginx", timeout=1)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(1)
        self.sock.connect(str(self.path))


def _served_generation(workdir: Path) -> int:
    """The configuration generation nginx answers on its control socket right now (-1 if none); the
    socket is the one sandbox/dataplane/nginx_config.py's NginxLayout puts in the nginx workdir."""
    connection = _UnixConnection(workdir / "control.sock")
    try:
        connection.request("GET", "/generation")
        return int(connection.getresponse().read().strip())
    except (OSError, ValueError):
        return -1
    finally:
        connection.close()


def canary_pod_ports(api_client: Any, name: str) -> list[int]:
    """Loopback ports of the running pods of the canary Deployment `name` (label app=<name>)."""
    core: Any = client.CoreV1Api(api_client)  # Any: with _preload_content=False it returns the raw response
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}", _preload_content=False)
    ports = []
    for pod in json.loads(pods.data).get("items") or []:
        port = (pod["metadata"].get("annotations") or {}).get(PORT_ANNOTATION)
        if port and not pod["metadata"].get("deletionTimestamp"):
            ports.append(int(port))
    return ports


def pod_metric(port: int, name: str) -> float | None:
    """One unlabelled sample from a pod's /metrics, or None if it does not answer or lacks it."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class Load:
    """Steady open-loop load on its own thread and event loop (sandbox/demo.py's `Load`, any spec)."""

    def __init__(self, spec: LoadSpec) -> None:
        self.generator = LoadGenerator(spec)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="e2e-load")

    def _run(self) -> None:
        self._loop.run_until_complete(self.generator.run())

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def snapshot(self) -> LoadReport:
        return self.generator.snapshot()

    def stop(self) -> LoadReport:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.generator.stop)
            self._thread.join(20)
        return self.generator.snapshot()


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when the reads of this sample had finished
    phase: str
    weight: int  # on the canary Ingress
    message: str


class Timeline:
    """Samples an app's phase and canary Ingress weight every `period` seconds on a thread with its own
    API client, to time a release from outside. With `alert` (an alert name) it also notes the first
    moment each link of the alert chain shows it: a canary pod exports demoapp_degraded 1, Prometheus
    has scraped it, Prometheus' rule fires, Alertmanager holds the alert. Moments are seconds since
    `origin` (set it to the template change); each is stamped when the read that saw it returned."""

    def __init__(self, app: ExampleApp, alert: str | None = None, period: float = 0.05) -> None:
        from kubernetes import config

        self._client = config.new_client_from_config(config_file=str(app.stack.kubeconfig_path))
        self._own = App(self._client, NAMESPACE, app.name)
        self._stack = app.stack
        self.alert = alert
        self.period = period
        self.samples: list[Sample] = []
        self.moments: dict[str, float] = {}
        self.origin = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="e2e-timeline")

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.alert is not None:
                    self._follow_alert_chain(self.alert)
                state = self._own.state()
                weight = self._own.canary_weight() or 0
            except Exception:  # a failed poll is a gap in the samples, not a result
                self._stop.wait(self.period)
                continue
            self.samples.append(Sample(time.monotonic(), str(state.get("phase", "")), weight,
                                       str(state.get("message", ""))))
            self._stop.wait(self.period)

    def _follow_alert_chain(self, alert: str) -> None:
        name = self._own.name
        selector = f'namespace="{NAMESPACE}", deployment="{name}"'
        links: list[tuple[str, Callable[[], bool]]] = [
            ("pod exports it", lambda: any(pod_metric(port, "demoapp_degraded") == 1.0
                                           for port in canary_pod_ports(self._client, name))),
            ("Prometheus scraped it", lambda: bool(self._query(f"demoapp_degraded{{{selector}}} == 1"))),
            ("Prometheus fires the alert", lambda: bool(self._query(
                f'ALERTS{{alertname="{alert}", alertstate="firing", {selector}}}'))),
            ("Alertmanager holds it", lambda: self._alertmanager_holds(alert, name)),
        ]
        for link, seen in links:
            if link not in self.moments and seen():
                self.moments[link] = time.monotonic()

    def _query(self, promql: str) -> list[Any]:
        url = f"{self._stack.prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=2) as answer:
            return list(json.loads(answer.read())["data"]["result"])

    def _alertmanager_holds(self, alert: str, name: str) -> bool:
        assert self._stack.full is not None and self._stack.full.alertmanager is not None
        return any(a["labels"].get("alertname") == alert and a["labels"].get("deployment") == name
                   for a in self._stack.full.alertmanager.alerts())

    def moment(self, link: str) -> float | None:
        at = self.moments.get(link)
        return None if at is None else at - self.origin

    def first(self, **want: object) -> float | None:
        """Seconds at the first sample that has every attribute in `want` (e.g. phase="Progressing")."""
        for sample in self.samples:
            if sample.at >= self.origin and all(getattr(sample, k) == v for k, v in want.items()):
                return sample.at - self.origin
        return None

    def rollback_reached_weight_0(self) -> float | None:
        """Seconds at the first sample where a rollback has begun and the canary Ingress says 0."""
        for sample in self.samples:
            if sample.at >= self.origin and sample.phase in ("RollingBack", "RolledBack") and sample.weight == 0:
                return sample.at - self.origin
        return None

    def max_weight(self) -> int:
        return max((s.weight for s in self.samples if s.at >= self.origin), default=0)

    def weights(self) -> list[int]:
        """Every distinct canary weight seen since `origin`, in order."""
        seen: list[int] = []
        for sample in self.samples:
            if sample.at >= self.origin and (not seen or seen[-1] != sample.weight):
                seen.append(sample.weight)
        return seen

"""Helpers for end-to-end tests: the example app, the controller as a real process, waiting on conditions,
and a recorder of everything that happens to Deployments and Ingresses in resourceVersion order.

Everything goes through the official client, so the same tests run against a real cluster
(WEIR_TEST_KUBECONFIG) as against the sandbox emulator.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from canary.annotations import COMMAND, ENABLED, ROLLOUT, STATE

T = TypeVar("T")
FAST_ROLLOUT = {
    "router": "nginx",
    "stages": [{"canary": {"weights": [10, 50], "interval": "1s"}}],
    "progress-deadline": "8s",
}


def wait_for(condition: Callable[[], T], timeout: float = 30.0, what: str = "condition",
             interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except ApiException as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def holds(condition: Callable[[], object], duration: float, what: str = "condition",
          interval: float = 0.1) -> None:
    """Check that `condition()` stays truthy for `duration` seconds; fail at the first moment it is not."""
    deadline = time.monotonic() + duration
    while True:
        value = condition()
        if not value:
            raise AssertionError(f"{what} stopped holding after {duration - (deadline - time.monotonic()):.1f}s: "
                                 f"{value!r}")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)


_KUBECTL_CACHE: list[str] = []


def kubectl(kubeconfig: Path, namespace: str, *args: str, check: bool = True,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """The real kubectl, as a person would run it; fails on a non-zero exit unless check=False."""
    binary = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")
    if not _KUBECTL_CACHE:  # discovery cached per test process, never in the user's ~/.kube
        _KUBECTL_CACHE.append(tempfile.mkdtemp(prefix="weir-kubectl-cache-"))
    command = [binary, "--kubeconfig", str(kubeconfig), "--cache-dir", _KUBECTL_CACHE[0], "-n", namespace, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr}")
    return result


def app_objects(name: str, rollout: dict[str, Any] | None, replicas: int = 2, image: str = "example/web:1",
                ingress: bool = True) -> list[dict[str, Any]]:
    annotations = {ENABLED: "true"}
    if rollout is not None:
        annotations[ROLLOUT] = yaml.safe_dump(rollout)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": annotations, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "progressDeadlineSeconds": 30,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "web", "image": image, "ports": [{"containerPort": 8080, "name": "http"}],
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1},
                    "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
                }]},
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    objects = [deployment, service]
    if ingress:
        objects.append({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": f"{name}.example.test", "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]},
        })
    return objects


@dataclass
class App:
    api: client.ApiClient
    namespace: str
    name: str

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    def create(self, rollout: dict[str, Any] | None = FAST_ROLLOUT, **kw: Any) -> App:
        for obj in app_objects(self.name, rollout, **kw):
            create(self.api, self.namespace, obj)
        return self

    def deployment(self, name: str | None = None) -> dict[str, Any] | None:
        try:
            raw = self.apps.read_namespaced_deployment(name or self.name, self.namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(json.loads(raw.data))

    def state(self) -> dict[str, Any]:
        deployment = self.deployment()
        text = ((deployment or {}).get("metadata", {}).get("annotations") or {}).get(STATE)
        return dict(json.loads(text)) if text else {}

    def phase(self) -> str | None:
        return self.state().get("phase")

    def wait_phase(self, phase: str, timeout: float = 30.0, revision: int | None = None) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            state = self.state()
            if state.get("phase") == phase and (revision is None or state.get("revision") == revision):
                return state
            return None
        return wait_for(reached, timeout, f"{self.name} phase {phase} (revision {revision})")

    def set_image(self, image: str) -> None:
        self.apps.patch_namespaced_deployment(self.name, self.namespace, {"spec": {"template": {"spec": {
            "containers": [{"name": "web", "image": image}]}}}})

    def patch_template(self, patch: dict[str, Any]) -> None:
        self.apps.patch_namespaced_deployment(self.name, self.namespace, {"spec": {"template": patch}})

    def annotate(self, key: str, value: str | None) -> None:
        self.apps.patch_namespaced_deployment(self.name, self.namespace,
                                              {"metadata": {"annotations": {key: value}}})

    def command(self, verb: str) -> None:
        self.annotate(COMMAND, verb)

    def canary_ingress(self) -> dict[str, Any] | None:
        try:
            raw = client.NetworkingV1Api(self.api).read_namespaced_ingress(
                f"{self.name}-canary", self.namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(json.loads(raw.data))

    def canary_weight(self) -> int | None:
        ingress = self.canary_ingress()
        if ingress is None:
            return None
        return int((ingress["metadata"].get("annotations") or {}).get(
            "nginx.ingress.kubernetes.io/canary-weight", "0"))

    def service(self, name: str) -> dict[str, Any] | None:
        try:
            raw = client.CoreV1Api(self.api).read_namespaced_service(name, self.namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(json.loads(raw.data))

    def events(self) -> list[dict[str, Any]]:
        raw = client.CoreV1Api(self.api).list_namespaced_event(self.namespace, _preload_content=False)
        items = json.loads(raw.data).get("items") or []
        return [e for e in items if e.get("involvedObject", {}).get("name") == self.name]

    def replicas(self, deployment: str | None = None) -> int | None:
        """spec.replicas of a Deployment (None if it does not exist)."""
        dep = self.deployment(deployment)
        return None if dep is None else int(dep["spec"].get("replicas", 1))

    def ready_replicas(self, deployment: str | None = None) -> int:
        dep = self.deployment(deployment)
        return 0 if dep is None else int((dep.get("status") or {}).get("readyReplicas") or 0)

    def annotations(self) -> dict[str, str]:
        return dict(((self.deployment() or {}).get("metadata") or {}).get("annotations") or {})

    def names(self, kind: str) -> set[str]:
        """Names of the namespace's objects of one kind: Deployment, Service or Ingress."""
        listers: dict[str, Any] = {"Deployment": self.apps.list_namespaced_deployment,
                                   "Service": client.CoreV1Api(self.api).list_namespaced_service,
                                   "Ingress": client.NetworkingV1Api(self.api).list_namespaced_ingress}
        items = json.loads(listers[kind](self.namespace, _preload_content=False).data).get("items") or []
        return {str(item["metadata"]["name"]) for item in items}

    def image(self, deployment: str) -> str:
        dep = self.deployment(deployment)
        assert dep is not None, f"deployment {deployment} missing"
        return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def create(api: client.ApiClient, namespace: str, obj: dict[str, Any]) -> None:
    kind = obj["kind"]
    if kind == "Deployment":
        client.AppsV1Api(api).create_namespaced_deployment(namespace, obj)
    elif kind == "Service":
        client.CoreV1Api(api).create_namespaced_service(namespace, obj)
    elif kind == "Ingress":
        client.NetworkingV1Api(api).create_namespaced_ingress(namespace, obj)
    else:
        raise ValueError(kind)


class ControllerProcess:
    """`weir run` as a real process, so tests can SIGKILL it like a node failure would."""

    def __init__(self, kubeconfig: Path, namespace: str, env: dict[str, str] | None = None,
                 args: list[str] | None = None, token_file: bool = True) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="weir-ctl-"))
        self.port_file = self.dir / "port"
        self.log_path = self.dir / "controller.log"
        self.token = "test-token"
        (self.dir / "token").write_text(self.token)
        command = [sys.executable, "-m", "canary.cli", "run", "--kubeconfig", str(kubeconfig),
                   "--namespace", namespace, "--listen", "127.0.0.1:0", "--port-file", str(self.port_file),
                   "--resync", "2", *(["--webhook-token-file", str(self.dir / "token")] if token_file else []),
                   *(args or [])]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})}, start_new_session=True)

    @property
    def port(self) -> int:
        return int(wait_for(lambda: self.port_file.exists() and self.port_file.read_text(), 30, "controller port"))

    def wait_exit(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()

    def logs(self) -> str:
        return self.log_path.read_text()

    def fire_alert(self, namespace: str, **labels: str) -> dict[str, Any]:
        """POST one firing Alertmanager alert with these labels to /alerts; returns the answer (2xx only)."""
        body = {"version": "4", "status": "firing", "receiver": "weir", "groupLabels": {}, "commonLabels": {},
                "alerts": [{"status": "firing", "labels": {"alertname": "CanaryErrors", "namespace": namespace,
                                                           **labels}, "annotations": {"summary": "5xx above 5%"}}]}
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/alerts", data=json.dumps(body).encode(),
                                         method="POST", headers={"Content-Type": "application/json",
                                                                 "Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))


@dataclass
class Recorder:
    """Watches Deployments and Ingresses of a namespace and keeps every change in resourceVersion order."""

    api: client.ApiClient
    namespace: str
    events: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Recorder:
        apps = client.AppsV1Api(self.api)
        net = client.NetworkingV1Api(self.api)
        for kind, lister in (("Deployment", apps.list_namespaced_deployment),
                             ("Ingress", net.list_namespaced_ingress)):
            ready = threading.Event()
            thread = threading.Thread(target=self._follow, args=(kind, lister, ready), daemon=True)
            thread.start()
            ready.wait(10)
            self._threads.append(thread)
        return self

    def _follow(self, kind: str, lister: Any, ready: threading.Event) -> None:
        listed = json.loads(lister(self.namespace, _preload_content=False).data)
        for item in listed.get("items") or []:
            self.events.append((int(item["metadata"]["resourceVersion"]), kind, "ADDED", item))
        rv = listed["metadata"]["resourceVersion"]
        ready.set()
        while not self._stop.is_set():
            stream = watch.Watch()
            for event in stream.stream(lister, self.namespace, resource_version=rv, timeout_seconds=2):
                obj = event["raw_object"]
                rv = obj["metadata"]["resourceVersion"]
                self.events.append((int(rv), kind, event["type"], obj))
                if self._stop.is_set():
                    stream.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def timeline(self) -> list[tuple[int, str, str, dict[str, Any]]]:
        return sorted(self.events, key=lambda e: e[0])

    def images(self, deployment: str) -> list[str]:
        """Every distinct first-container image a Deployment's template had, in order."""
        images: list[str] = []
        for _, kind, _, obj in self.timeline():
            if kind == "Deployment" and obj["metadata"]["name"] == deployment:
                image = str(obj["spec"]["template"]["spec"]["containers"][0]["image"])
                if not images or images[-1] != image:
                    images.append(image)
        return images

    def canary_weights(self, name: str) -> list[int]:
        """Every distinct canary weight the canary Ingress of `name` had, in order."""
        weights: list[int] = []
        for _, kind, _, obj in self.timeline():
            if kind == "Ingress" and obj["metadata"]["name"] == f"{name}-canary":
                w = int((obj["metadata"].get("annotations") or {}).get(
                    "nginx.ingress.kubernetes.io/canary-weight", "0"))
                if not weights or weights[-1] != w:
                    weights.append(w)
        return weights

    def unsafe_moments(self, name: str) -> list[str]:
        """Moments where the canary Ingress sends traffic while the canary Deployment has no ready pod."""
        ready = 0
        weight = 0
        problems = []
        for rv, kind, kind_of_event, obj in self.timeline():
            meta = obj["metadata"]
            if kind == "Deployment" and meta["name"] == name:
                ready = 0 if kind_of_event == "DELETED" else int((obj.get("status") or {}).get("readyReplicas") or 0)
            elif kind == "Ingress" and meta["name"] == f"{name}-canary":
                annotations = meta.get("annotations") or {}
                weight = 0 if kind_of_event == "DELETED" else int(
                    annotations.get("nginx.ingress.kubernetes.io/canary-weight", "0"))
                if any(k.endswith(("canary-by-header", "canary-by-cookie")) for k in annotations):
                    weight = max(weight, 1)
            else:
                continue
            if weight > 0 and ready == 0:
                problems.append(f"rv {rv}: canary weight {weight} with 0 ready canary pods")
        return problems


def promoted_at(state: dict[str, Any], revision: int) -> float | None:
    """When `revision` was promoted (wall-clock seconds, from the state's history), if it was."""
    for entry in state.get("history") or []:
        if entry.get("number") == revision:
            return float(entry["promoted_at"])
    return None


def traceback_count(log: str) -> int:
    """How many Python tracebacks a log holds."""
    return log.count("Traceback (most recent call last)")


def log_tail(log: str, lines: int = 40, width: int = 400) -> str:
    """The last `lines` lines of a log, each cut to `width` characters."""
    return "\n".join(line if len(line) <= width else f"{line[:width]}…" for line in log.splitlines()[-lines:])

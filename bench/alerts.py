"""Alert-driven rollback latency: from the Alertmanager webhook request to the router at canary weight 0,
with N releases in progress on the sandbox API (issue 4 target: p99 under 1 s with 100 releases).

    python bench/alerts.py [--releases 100]

Measures two patterns: alerts one at a time (each release rolled back while the others keep running),
and a burst (alerts for every remaining release in one webhook call). Prints percentiles.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch

from sandbox.apiserver import SandboxThread
from sandbox.prometheus_server import free_port

NAMESPACE = "bench"
TOKEN = "bench-token"
ROLLOUT = {"router": "nginx", "stages": [{"canary": {"weights": [10], "interval": "1h"}}],
           "rollback-on-alerts": ['severity="page"']}
WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def app(name: str) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "annotations": {"weir.dev/enabled": "true",
                                                    "weir.dev/rollout": yaml.safe_dump(ROLLOUT)}},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"containers": [{"name": "web", "image": "bench/web:1"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
         "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
         "spec": {"rules": [{"host": f"{name}.bench.test", "http": {"paths": [{
             "path": "/", "pathType": "Prefix", "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]}},
    ]


class WeightWatch:
    """Records when each canary Ingress's weight changes, as seen by a watch (the router's effect)."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.zero_at: dict[str, float] = {}
        self.weights: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        net = client.NetworkingV1Api(self.api)
        while not self._stop.is_set():
            try:
                self._follow(net)
            except Exception as error:  # a dropped stream: follow again from a fresh list
                print(f"(weight watch restarted: {error})", file=sys.stderr)

    def _follow(self, net: Any) -> None:
        while not self._stop.is_set():
            for event in watch.Watch().stream(net.list_namespaced_ingress, NAMESPACE, timeout_seconds=5):
                obj = event["raw_object"]
                name = obj["metadata"]["name"]
                if not name.endswith("-canary"):
                    continue
                weight = int((obj["metadata"].get("annotations") or {}).get(WEIGHT, "0"))
                with self._lock:
                    self.weights[name[: -len("-canary")]] = weight
                    if weight == 0:
                        self.zero_at[name[: -len("-canary")]] = time.monotonic()

    def count_at(self, weight: int) -> int:
        with self._lock:
            return sum(1 for w in self.weights.values() if w == weight)

    def stop(self) -> None:
        self._stop.set()


def all_idle(apps: Any, count: int) -> bool:
    """Every Deployment initialized (a template change before that is adopted as the first primary)."""
    listed = json.loads(apps.list_namespaced_deployment(NAMESPACE, _preload_content=False).data)["items"]
    phases = [json.loads((d["metadata"].get("annotations") or {}).get("weir.dev/state", "{}")).get("phase")
              for d in listed if not d["metadata"]["name"].endswith("-primary")]
    return phases.count("Idle") == count


def post_alerts(url: str, names: list[str]) -> None:
    body = {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "CanaryErrors", "severity": "page", "namespace": NAMESPACE,
                                        "deployment": name}, "annotations": {}} for name in names]}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000

    return (f"n={len(ordered)}  p50 {at(0.5):.0f} ms  p90 {at(0.9):.0f} ms  p99 {at(0.99):.0f} ms  "
            f"max {ordered[-1] * 1000:.0f} ms  mean {statistics.mean(ordered) * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--burst", type=int, default=20, help="releases rolled back by one webhook call")
    args = parser.parse_args()
    # `timeout` and Ctrl-C must still run the clean-up below (the controller runs in its own session).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="weir-bench-alerts-"))
    (workdir / "token").write_text(TOKEN)
    with SandboxThread(ready_delay=0.05) as sandbox:
        api = sandbox.api_client()
        core: Any = client.CoreV1Api(api)
        apps: Any = client.AppsV1Api(api)
        net: Any = client.NetworkingV1Api(api)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        names = [f"web{i:03d}" for i in range(args.releases)]
        for name in names:
            deployment, service, ingress = app(name)
            core.create_namespaced_service(NAMESPACE, service)
            net.create_namespaced_ingress(NAMESPACE, ingress)
            apps.create_namespaced_deployment(NAMESPACE, deployment)
        port = free_port()
        controller = subprocess.Popen(
            [sys.executable, "-m", "canary.cli", "run", "--kubeconfig", str(sandbox.kubeconfig_path),
             "--namespace", NAMESPACE, "--listen", f"127.0.0.1:{port}", "--webhook-token-file",
             str(workdir / "token"), "--log-level", os.environ.get("WEIR_BENCH_LOG", "warning")],
            stdout=subprocess.DEVNULL, stderr=open(workdir / "controller.log", "w"),  # noqa: SIM115
            start_new_session=True)
        weights = WeightWatch(api)
        try:
            started = time.monotonic()
            wait(lambda: all_idle(apps, len(names)), 300, "every release initialized")
            print(f"{len(names)} Deployments opted in after {time.monotonic() - started:.1f}s")
            for name in names:
                apps.patch_namespaced_deployment(name, NAMESPACE, {"spec": {"template": {"spec": {
                    "containers": [{"name": "web", "image": "bench/web:2"}]}}}})
            started = time.monotonic()
            try:
                wait(lambda: weights.count_at(10) == len(names), 120, "every release at weight 10")
            except SystemExit:
                from collections import Counter
                phases = Counter(json.loads(d.metadata.annotations.get("weir.dev/state", "{}")).get("message", "?")
                                 for d in apps.list_namespaced_deployment(NAMESPACE).items
                                 if not d.metadata.name.endswith("-primary"))
                print("weights", Counter(weights.weights.values()), "states", phases.most_common(5))
                raise
            print(f"{len(names)} releases in progress at weight 10 after {time.monotonic() - started:.1f}s")
            webhook = f"http://127.0.0.1:{port}/alerts"
            one_by_one = names[: len(names) - args.burst]
            latencies: list[float] = []
            for name in one_by_one:
                sent = time.monotonic()
                post_alerts(webhook, [name])
                wait(lambda n=name: weights.weights.get(n) == 0, 10, f"{name} at weight 0")  # type: ignore[misc]
                latencies.append(weights.zero_at[name] - sent)
                time.sleep(0.05)
            print(f"one alert at a time, {len(names)} releases active at the start: {percentiles(latencies)}")
            burst = names[len(one_by_one):]
            sent = time.monotonic()
            post_alerts(webhook, burst)
            wait(lambda: all(weights.weights.get(n) == 0 for n in burst), 30, "burst rolled back")
            burst_latencies = [weights.zero_at[n] - sent for n in burst]
            print(f"burst of {len(burst)} alerts in one webhook call: {percentiles(burst_latencies)}")
        finally:
            weights.stop()
            os.killpg(controller.pid, signal.SIGTERM)
            controller.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`weir demo`: Weir doing its whole job on the local sandbox, with live progress and a summary.

It starts the full sandbox (API emulator, pods as processes, nginx, Prometheus, Alertmanager) and the
controller, opts in an example app under steady load, and releases four versions: a healthy one
(promoted), one with 5% errors and one with +30% latency (rolled back by the analysis), and one that
trips an alert rule (rolled back by the alert). Everything is torn down at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from sandbox.loadgen import UNKNOWN_VERSION, LoadGenerator, LoadReport, LoadSpec
from sandbox.stack import Stack

NAMESPACE = "default"
APP = "web"
HOST = "web.demo.test"
LOAD_RATE = 120.0
BASELINE_ENV = {"ERROR_RATE": "0.005", "LATENCY_MS": "50", "LATENCY_JITTER": "0.25"}
WEIGHTS = [10, 30, 50]
ROLLOUT = {
    "router": "nginx",
    "stages": [{"canary": {"weights": WEIGHTS, "interval": "10s"}}],
    "analysis": {"interval": "2s", "alpha": 0.01, "metrics": ["error-rate", "latency"]},
    "progress-deadline": "60s",
    "rollback-on-alerts": ['severity="page"'],
}


@dataclass(frozen=True)
class Release:
    version: str
    description: str
    env: dict[str, str]
    expected: str  # the phase it must end in
    cause: str  # what should decide it, for the summary


RELEASES = (
    Release("1.1", "healthy", {}, "Idle", "all stages passed"),
    Release("1.2", "5% errors", {"ERROR_RATE": "0.05"}, "RolledBack", "analysis"),
    Release("1.3", "+30% latency", {"LATENCY_MS": "65"}, "RolledBack", "analysis"),
    Release("1.4", "trips an alert", {"DEGRADED": "true"}, "RolledBack", "alert"),
)


@dataclass
class Result:
    release: Release
    outcome: str = "timeout"
    seconds: float = 0.0
    message: str = ""
    canary_served: int = 0
    failed: int = 0
    verdicts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        if self.outcome != self.release.expected:
            return False
        if self.release.cause == "alert":
            return "alert" in self.message
        if self.release.cause == "analysis":
            return "analysis" in self.message
        return self.failed == 0


def deployment(version: str, env: dict[str, str]) -> dict[str, Any]:
    merged = {**BASELINE_ENV, **env}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": APP, "labels": {"app": APP}, "annotations": {
            "weir.dev/enabled": "true", "weir.dev/rollout": yaml.safe_dump(ROLLOUT)}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": APP}},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": APP}}, "spec": {
                "terminationGracePeriodSeconds": 10,
                "containers": [{
                    "name": APP, "image": f"demo/web:{version}",
                    "env": [{"name": k, "value": v} for k, v in sorted(merged.items())],
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1},
                    "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
                }],
            }},
        },
    }


def app_objects() -> list[dict[str, Any]]:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP},
               "spec": {"selector": {"app": APP}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": APP},
               "spec": {"ingressClassName": "nginx", "rules": [{"host": HOST, "http": {"paths": [{
                   "path": "/", "pathType": "Prefix",
                   "backend": {"service": {"name": APP, "port": {"number": 80}}}}]}}]}}
    return [deployment("1.0", {}), service, ingress]


class Load:
    """The load generator on its own thread and loop, so the demo's main thread can watch and print."""

    def __init__(self, url: str) -> None:
        self.generator = LoadGenerator(LoadSpec(url=url + "/", rate=LOAD_RATE, headers=(("Host", HOST),)))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="demo-load")

    def _run(self) -> None:
        self._loop.run_until_complete(self.generator.run())

    def start(self) -> Load:
        self._thread.start()
        return self

    def snapshot(self) -> LoadReport:
        return self.generator.snapshot()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self.generator.stop)
        self._thread.join(15)


class Console:
    """Live progress: one rewritten line on a terminal, one line per change otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self._last = ""

    def say(self, text: str) -> None:
        if self.tty and self._last:
            sys.stdout.write("\n")
        self._last = ""
        print(text, flush=True)

    def progress(self, text: str) -> None:
        if self.tty:
            sys.stdout.write("\r" + text[:150].ljust(150))
            sys.stdout.flush()
            self._last = text
        elif text.split("|")[0] != self._last.split("|")[0]:
            print(text, flush=True)
            self._last = text


def release_failures(report: LoadReport) -> int:
    """Requests the release itself failed: no answer at all, or a 5xx that no pod wrote (nginx's 502/503
    when it had nowhere to send the request). The app's own injected 500s carry its version."""
    dropped = sum(n for (version, code), n in report.responses.items() if code >= 500 and version == UNKNOWN_VERSION)
    return report.connection_errors + dropped


def bar(fraction: float, width: int = 20) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def read_state(apps: Any) -> dict[str, Any]:
    raw = apps.read_namespaced_deployment(APP, NAMESPACE, _preload_content=False)
    annotations = json.loads(raw.data)["metadata"].get("annotations") or {}
    text = annotations.get("weir.dev/state")
    return dict(json.loads(text)) if text else {}


def watch_release(apps: Any, console: Console, load: Load, release: Release, revision: int,
                  timeout: float) -> Result:
    result = Result(release)
    start = time.monotonic()
    before = load.snapshot()
    steps = len(WEIGHTS)
    while time.monotonic() - start < timeout:
        state = read_state(apps)
        elapsed = time.monotonic() - start
        phase = state.get("phase", "?")
        if state.get("revision") == revision and phase in ("Idle", "RolledBack"):
            result.outcome, result.message = phase, state.get("message", "")
            break
        verdict = state.get("verdict") or {}
        done = (state.get("step", 0) + (1 if phase in ("Promoting", "RollingBack") else 0)) / steps
        console.progress(f"  {release.version} {phase:<11} {state.get('stage_name', ''):<12} "
                         f"weight {state.get('weight', 0):>3}% {bar(done)} | "
                         f"verdict {verdict.get('outcome', '-')}: {str(verdict.get('reason', ''))[:60]}  "
                         f"[{elapsed:5.1f}s]")
        time.sleep(0.25)
    result.seconds = time.monotonic() - start
    after = load.snapshot()
    result.canary_served = after.by_version.get(release.version, 0) - before.by_version.get(release.version, 0)
    result.failed = release_failures(after) - release_failures(before)
    return result


def install_app(stack: Stack, timeout: float = 60.0) -> Any:
    """Create the example app (Service, Ingress, annotated Deployment) and wait until Weir has
    initialized it; returns an AppsV1Api (typed Any: the demo sends plain dicts as bodies)."""
    from kubernetes import client

    apps: Any = client.AppsV1Api(stack.api_client)
    core: Any = client.CoreV1Api(stack.api_client)
    net: Any = client.NetworkingV1Api(stack.api_client)
    dep, service, ingress = app_objects()
    core.create_namespaced_service(NAMESPACE, service)
    net.create_namespaced_ingress(NAMESPACE, ingress)
    apps.create_namespaced_deployment(NAMESPACE, dep)
    deadline = time.monotonic() + timeout
    while read_state(apps).get("phase") != "Idle":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{APP} was not initialized by Weir within {timeout:.0f} s")
        time.sleep(0.2)
    return apps


def run(args: argparse.Namespace) -> int:
    console = Console()
    console.say("weir demo: starting the sandbox (API emulator, nginx, Prometheus, Alertmanager) and the controller")
    started = time.monotonic()
    results: list[Result] = []
    with Stack() as stack:
        console.say(f"  sandbox up in {time.monotonic() - started:.1f}s; ingress {stack.ingress_url} "
                    f"(Host: {HOST}); Prometheus {stack.prometheus_url}")
        console.say("  opting in Deployment web (2 replicas of demo/web:1.0)")
        try:
            apps = install_app(stack)
        except RuntimeError as error:
            console.say(f"  {error}")
            return 1
        load = Load(stack.ingress_url).start()
        console.say(f"  primary web-primary serves all traffic; steady load of {LOAD_RATE:.0f} req/s through nginx")
        try:
            for number, release in enumerate(RELEASES, start=1):
                console.say(f"release {number}/{len(RELEASES)}: demo/web:{release.version} ({release.description})")
                # Replace the whole template (JSON patch): a strategic merge would keep env entries of
                # the previous version, such as DEGRADED.
                template = deployment(release.version, release.env)["spec"]["template"]
                apps.patch_namespaced_deployment(
                    APP, NAMESPACE, [{"op": "replace", "path": "/spec/template", "value": template}])
                result = watch_release(apps, console, load, release, number, args.timeout / len(RELEASES))
                results.append(result)
                mark = "ok" if result.ok else "UNEXPECTED"
                console.say(f"  -> {result.outcome} after {result.seconds:.1f}s: {result.message} [{mark}]")
        finally:
            load.stop()
    console.say("")
    console.say(summary(results))
    total = time.monotonic() - started
    all_ok = len(results) == len(RELEASES) and all(r.ok for r in results)
    console.say(f"\nweir demo: {'all releases ended as expected' if all_ok else 'some releases did not'} "
                f"in {total:.0f}s")
    return 0 if all_ok else 1


def summary(results: list[Result]) -> str:
    rows = [("release", "change", "outcome", "decided by", "time", "canary served", "failed", "")]
    for r in results:
        rows.append((r.release.version, r.release.description, r.outcome, r.release.cause, f"{r.seconds:.1f}s",
                     str(r.canary_served), str(r.failed), "ok" if r.ok else "UNEXPECTED"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


def main(args: argparse.Namespace) -> int:
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\nweir demo: interrupted; everything was torn down", file=sys.stderr)
        return 130

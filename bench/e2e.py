"""Benchmark the demo's releases end to end on the full sandbox (real pods, nginx, Prometheus, Alertmanager).

    python bench/e2e.py [--runs N] [--timeout SECONDS] [--gap SECONDS] [--keep DIR]

Starts the stack of `weir demo` (sandbox/demo.py: the same app, load of 120 req/s through nginx and
rollout), then releases the demo's four versions in order, N times over: healthy (promoted), 5% errors
and +30% latency (rolled back by the analysis), an alert rule tripped (rolled back by the alert).
For every release it prints: the outcome and what decided it, the time from the template change to
promoted / rolled back, the moment the canary Ingress was back at weight 0 (rollbacks), the requests
the canary served and failed, and requests the release itself failed (no answer, or a 5xx no pod
wrote); then the alert case's time from the template change to canary weight 0. Exits 0 once every
release has ended (1 if one never did); unexpected outcomes are marked, not fatal.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.demo import (
    APP,
    NAMESPACE,
    RELEASES,
    Console,
    Load,
    Release,
    Result,
    deployment,
    install_app,
    read_state,
    watch_release,
)
from sandbox.stack import Stack

WEIGHT_ANNOTATION = "nginx.ingress.kubernetes.io/canary-weight"


@dataclass(frozen=True)
class Measured:
    run: int
    result: Result
    weight_0_seconds: float | None  # template change -> canary Ingress at 0 after the rollback began
    canary_failed: int  # 5xx the canary's pods wrote
    inherited: bool  # rolled back with the previous release's message word for word: not its own verdict

    @property
    def release(self) -> Release:
        return self.result.release


class WeightWatcher:
    """Polls the demo app's state and canary Ingress weight every 50 ms on a thread with its own API
    client, and notes when the rollback of `revision` has the canary Ingress at weight 0."""

    def __init__(self, stack: Stack, revision: int, period: float = 0.05) -> None:
        from kubernetes import client, config

        self._client = config.new_client_from_config(config_file=str(stack.kubeconfig_path))
        self._apps: Any = client.AppsV1Api(self._client)
        self._net: Any = client.NetworkingV1Api(self._client)
        self.revision = revision
        self.period = period
        self.origin = time.monotonic()
        self.weight_0_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-weights")

    def __enter__(self) -> WeightWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set() and self.weight_0_at is None:
            try:
                state = read_state(self._apps)
                weight: int | None = self._weight()
            except Exception:  # a failed poll is a gap in the samples, not a result
                state, weight = {}, None
            if (state.get("revision") == self.revision and state.get("phase") in ("RollingBack", "RolledBack")
                    and weight == 0):
                self.weight_0_at = time.monotonic()
            self._stop.wait(self.period)

    def _weight(self) -> int:
        from kubernetes.client.exceptions import ApiException

        try:
            raw = self._net.read_namespaced_ingress(f"{APP}-canary", NAMESPACE, _preload_content=False)
        except ApiException as error:
            if error.status == 404:
                return 0
            raise
        annotations = json.loads(raw.data)["metadata"].get("annotations") or {}
        return int(annotations.get(WEIGHT_ANNOTATION, "0"))

    def seconds_to_weight_0(self) -> float | None:
        return None if self.weight_0_at is None else self.weight_0_at - self.origin


def run(runs: int, timeout: float, gap: float = 0.0, keep: Path | None = None) -> list[Measured]:

    console = Console()
    measured: list[Measured] = []
    started = time.monotonic()
    with Stack(directory=keep) as stack:
        apps = install_app(stack)
        console.say(f"stack up and {APP} opted in after {time.monotonic() - started:.1f}s; load through nginx")
        load = Load(stack.ingress_url).start()
        revision = 0
        try:
            for number in range(1, runs + 1):
                for template in RELEASES:
                    # A new version string per run, so every run releases a template not seen before.
                    release = template if number == 1 else dataclasses.replace(
                        template, version=f"{template.version}-{number}")
                    revision += 1
                    console.say(f"run {number}/{runs}: demo/web:{release.version} ({release.description})")
                    patch = deployment(release.version, release.env)["spec"]["template"]
                    with WeightWatcher(stack, revision) as watcher:
                        before = load.snapshot()
                        watcher.origin = time.monotonic()
                        # A JSON patch replaces the template whole: a strategic merge (what the demo sends)
                        # would keep env entries of earlier releases, e.g. 1.4's DEGRADED=true in every
                        # later release.
                        apps.patch_namespaced_deployment(
                            APP, NAMESPACE, [{"op": "replace", "path": "/spec/template", "value": patch}])
                        result = watch_release(apps, console, load, release, revision, timeout)
                        after = load.snapshot()
                    canary_failed = after.failed_by_version(release.version) - before.failed_by_version(
                        release.version)
                    inherited = bool(measured) and result.outcome == "RolledBack" and (
                        result.message == measured[-1].result.message)
                    measured.append(Measured(number, result, watcher.seconds_to_weight_0(), canary_failed, inherited))
                    console.say(f"  -> {result.outcome} after {result.seconds:.1f}s: {result.message}")
                    if result.outcome == "timeout":
                        return measured
                    time.sleep(gap)
        finally:
            load.stop()
    return measured


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def report(measured: Sequence[Measured]) -> str:
    rows: list[list[str]] = [["run", "release", "change", "outcome", "decided by", "time to decide",
                              "canary weight 0 at", "canary served", "canary failed", "failed by release", ""]]
    for m in measured:
        r = m.result
        rows.append([str(m.run), r.release.version, r.release.description, r.outcome, r.release.cause,
                     seconds(r.seconds), seconds(m.weight_0_seconds), str(r.canary_served), str(m.canary_failed),
                     str(r.failed), _verdict_mark(m)])
    lines = [table(rows), ""]
    healthy = [m for m in measured if m.release.cause == "all stages passed"]
    if healthy:
        promoted = [m.result.seconds for m in healthy if m.result.outcome == "Idle"]
        lines.append(f"healthy release: promoted {len(promoted)} of {len(healthy)} in {_spread(promoted)}; "
                     f"failed requests during the healthy releases: {[m.result.failed for m in healthy]}")
    for template in RELEASES:
        if template.cause == "all stages passed":
            continue
        own = [m for m in measured if m.release.description == template.description and m.result.ok
               and not m.inherited]
        others = sum(1 for m in measured if m.release.description == template.description) - len(own)
        lines.append(
            f"{template.description}: rolled back by the {template.cause} {len(own)} times on its own evidence"
            + (f" ({others} other outcomes)" if others else "") + "; canary served "
            + _spread([float(m.result.canary_served) for m in own], "") + " requests before the rollback, in "
            + _spread([m.result.seconds for m in own]) + "; canary weight 0 at "
            + _spread([m.weight_0_seconds for m in own if m.weight_0_seconds is not None])
            + " after the template change")
    return "\n".join(lines)


def _verdict_mark(m: Measured) -> str:
    if m.inherited:
        return "UNEXPECTED: the previous release's verdict"
    return "ok" if m.result.ok else "UNEXPECTED"


def _spread(values: Sequence[float], unit: str = "s") -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{2 if unit else 0}f}{unit}"
    digits = 2 if unit else 0
    return (f"median {statistics.median(values):.{digits}f}{unit} (min {min(values):.{digits}f}{unit}, "
            f"max {max(values):.{digits}f}{unit}, n={len(values)})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/e2e.py", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="times to release the four versions (default 1)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds a release may take (default 90)")
    parser.add_argument("--gap", type=float, default=0.0, metavar="SECONDS",
                        help="wait between releases (default 0, as the demo does)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="run the stack in DIR and keep its files (controller.log, pod logs) afterwards")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        measured = run(args.runs, args.timeout, args.gap, args.keep)
    except KeyboardInterrupt:
        print("\ninterrupted; everything was torn down", file=sys.stderr)
        return 130
    print()
    print(report(measured))
    print(f"\n{len(measured)} releases in {time.monotonic() - started:.0f}s")
    complete = len(measured) == args.runs * len(RELEASES) and all(m.result.outcome != "timeout" for m in measured)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())

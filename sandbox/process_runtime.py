"""Pods as local processes: the `--full` sandbox's PodRuntime.

Each Pod runs one process of the demo app (or another command) on its own 127.0.0.1 port, with its
first container's env. The runtime probes readiness as the Pod's readinessProbe says and reports every
change through the sink. Stopping follows the kubelet: report not ready (so traffic moves away), run
the preStop sleep while still serving, SIGTERM, and SIGKILL once terminationGracePeriodSeconds is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from sandbox.runtime import PodStatusReport, ReportSink

log = logging.getLogger(__name__)

DEMO_APP_COMMAND: tuple[str, ...] = (sys.executable, "-m", "sandbox.demoapp")
# Kubernetes probes every 10 s by default; the sandbox has no time to lose, so unset periods are short.
SANDBOX_PROBE_PERIOD_SECONDS = 0.5
DEFAULT_GRACE_SECONDS = 30.0
_KILL_EXTENSION_SECONDS = 2.0  # the kubelet's one-time extension when preStop used the whole grace period
_SLEEP = re.compile(r"(?:^|[\s;&|])sleep\s+(\d+(?:\.\d+)?)s?(?:$|[\s;&|])")


@dataclass(frozen=True)
class ReadinessProbe:
    path: str = "/readyz"
    initial_delay_seconds: float = 0.0
    period_seconds: float = SANDBOX_PROBE_PERIOD_SECONDS
    timeout_seconds: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class PodProcessSpec:
    """What the runtime needs from a Pod object, read once."""

    namespace: str
    name: str
    env: tuple[tuple[str, str], ...]
    readiness: ReadinessProbe
    pre_stop_seconds: float = 0.0
    grace_seconds: float = DEFAULT_GRACE_SECONDS

    @classmethod
    def from_pod(cls, pod: Mapping[str, Any]) -> PodProcessSpec:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        containers = spec.get("containers") or []
        if not containers:
            raise ValueError("spec.containers: the Pod has no container; add one with an image")
        container = containers[0]
        namespace, name = meta.get("namespace", "default"), meta["name"]
        grace = spec.get("terminationGracePeriodSeconds")
        return cls(
            namespace=namespace,
            name=name,
            env=_container_env(container, namespace, name),
            readiness=_readiness(container.get("readinessProbe")),
            pre_stop_seconds=_pre_stop_seconds(container.get("lifecycle") or {}),
            grace_seconds=float(grace) if grace is not None else DEFAULT_GRACE_SECONDS,
        )


def image_tag(image: str) -> str:
    """`registry:5000/demo:v2` -> `v2`; no tag -> `latest`; a digest -> its first 12 hex digits."""
    if "@" in image:
        return image.split("@", 1)[1].split(":")[-1][:12]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _container_env(container: Mapping[str, Any], namespace: str, name: str) -> tuple[tuple[str, str], ...]:
    fields = {"metadata.name": name, "metadata.namespace": namespace, "status.podIP": "127.0.0.1"}
    env: dict[str, str] = {"HOSTNAME": name, "POD_NAME": name}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif (path := ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")) in fields:
            env[item["name"]] = fields[path]
    env.setdefault("VERSION", image_tag(container.get("image") or ""))
    return tuple(env.items())


def _readiness(probe: Mapping[str, Any] | None) -> ReadinessProbe:
    if not probe:
        # No readinessProbe: Kubernetes calls a pod ready once its container runs; "runs" here means
        # the process answers, which /healthz tells.
        return ReadinessProbe(path="/healthz", failure_threshold=1_000_000)
    http_get = probe.get("httpGet") or {}
    default = ReadinessProbe()
    return ReadinessProbe(
        path=http_get.get("path") or default.path,
        initial_delay_seconds=float(probe.get("initialDelaySeconds") or 0),
        period_seconds=float(probe.get("periodSeconds") or default.period_seconds),
        timeout_seconds=float(probe.get("timeoutSeconds") or default.timeout_seconds),
        success_threshold=int(probe.get("successThreshold") or 1),
        failure_threshold=int(probe.get("failureThreshold") or 3),
    )


def _pre_stop_seconds(lifecycle: Mapping[str, Any]) -> float:
    """`preStop.sleep.seconds`, or the N of a `sleep N` in `preStop.exec.command`. Other commands are
    not run: a pod spec is not a licence to execute things on the host."""
    pre_stop = lifecycle.get("preStop") or {}
    if "sleep" in pre_stop:
        return float((pre_stop.get("sleep") or {}).get("seconds") or 0)
    command = " ".join(str(part) for part in (pre_stop.get("exec") or {}).get("command") or [])
    match = _SLEEP.search(command)
    return float(match.group(1)) if match else 0.0


@dataclass
class _RunningPod:
    spec: PodProcessSpec
    process: asyncio.subprocess.Process
    port: int
    log_path: Path
    ready: bool = False
    terminating: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class ProcessRuntime:
    """Usage: `runtime = ProcessRuntime(sink)`; the sandbox calls start(pod) / stop(ns, name, grace)
    and close() at shutdown. `port(ns, name)` tells where a pod listens."""

    def __init__(
        self,
        sink: ReportSink,
        command: Sequence[str] = DEMO_APP_COMMAND,
        log_dir: Path | None = None,
    ) -> None:
        self._sink = sink
        self._command = tuple(command)
        self._own_log_dir = log_dir is None
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="weir-pods-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._pods: dict[tuple[str, str], _RunningPod] = {}
        self._starting: dict[tuple[str, str], asyncio.Event] = {}
        self._session: aiohttp.ClientSession | None = None

    def port(self, namespace: str, name: str) -> int | None:
        pod = self._pods.get((namespace, name))
        return pod.port if pod else None

    def pid(self, namespace: str, name: str) -> int | None:
        pod = self._pods.get((namespace, name))
        return pod.process.pid if pod else None

    async def start(self, pod: Mapping[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace", "default"), meta.get("name", ""))
        if key in self._pods or key in self._starting:
            return  # already running: start is repeatable
        try:
            spec = PodProcessSpec.from_pod(pod)
        except (ValueError, KeyError, TypeError) as error:
            await self._report(key[0], key[1], "Failed", False, None, f"cannot run this pod: {error}")
            return
        self._starting[key] = started = asyncio.Event()
        try:
            running = await self._spawn(spec)
            self._pods[key] = running
            await self._report_pod(running, "process started")
            running.tasks = [
                asyncio.create_task(self._probe_loop(running)),
                asyncio.create_task(self._watch_exit(running)),
            ]
        except OSError as error:
            await self._report(key[0], key[1], "Failed", False, None, f"cannot start {self._command[0]}: {error}")
        finally:
            del self._starting[key]
            started.set()

    async def stop(self, namespace: str, name: str, grace_seconds: float) -> None:
        starting = self._starting.get((namespace, name))
        if starting is not None:
            await starting.wait()  # a delete right after a create must not miss the process
        running = self._pods.get((namespace, name))
        if running is None:
            return
        deadline = time.monotonic() + grace_seconds
        running.terminating = True
        self._cancel_probe(running)
        running.ready = False
        await self._report_pod(running, "terminating")
        if running.process.returncode is None and running.spec.pre_stop_seconds > 0:
            # preStop runs while the process still serves: in-flight and late requests are answered.
            await asyncio.sleep(min(running.spec.pre_stop_seconds, grace_seconds))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            remaining = _KILL_EXTENSION_SECONDS
        await self._terminate(running, remaining)
        self._pods.pop((namespace, name), None)
        for task in running.tasks:
            task.cancel()

    async def close(self) -> None:
        pods, self._pods = list(self._pods.values()), {}
        for running in pods:
            running.terminating = True
            for task in running.tasks:
                task.cancel()
            if running.process.returncode is None:
                _kill_group(running.process.pid)
        for running in pods:
            with contextlib.suppress(ProcessLookupError):
                await running.process.wait()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._own_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    async def _spawn(self, spec: PodProcessSpec) -> _RunningPod:
        # The runtime binds the port and hands the socket over: no race for a "free" port, and
        # connections queue from the first instant instead of being refused during start-up.
        listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        port = int(listener.getsockname()[1])
        drain = max(spec.grace_seconds - spec.pre_stop_seconds, 1.0)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": _project_root(),
            **dict(spec.env),
            "LISTEN_FD": str(listener.fileno()),
            "SHUTDOWN_GRACE_SECONDS": f"{drain:g}",
        }
        log_path = self.log_dir / f"{spec.namespace}_{spec.name}.log"
        try:
            with open(log_path, "ab") as output:
                process = await asyncio.create_subprocess_exec(
                    *self._command, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=output,
                    stderr=asyncio.subprocess.STDOUT, pass_fds=(listener.fileno(),), start_new_session=True,
                )
        finally:
            listener.close()  # the child owns it now; a copy here would keep accepting after it exits
        return _RunningPod(spec, process, port, log_path)

    async def _probe_loop(self, running: _RunningPod) -> None:
        probe = running.spec.readiness
        await asyncio.sleep(probe.initial_delay_seconds)
        successes = failures = 0
        while not running.terminating:
            if await self._probe_once(running.port, probe):
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
            if not running.ready and successes >= probe.success_threshold:
                running.ready = True
                await self._report_pod(running, "readiness probe succeeded")
            elif running.ready and failures >= probe.failure_threshold:
                running.ready = False
                await self._report_pod(running, f"readiness probe failed {failures} times")
            await asyncio.sleep(probe.period_seconds)

    async def _probe_once(self, port: int, probe: ReadinessProbe) -> bool:
        if self._session is None:
            # No keep-alive: a probe connection must not hold a shutting-down process open.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        url = f"http://127.0.0.1:{port}{probe.path}"
        try:
            timeout = aiohttp.ClientTimeout(total=probe.timeout_seconds)
            async with self._session.get(url, timeout=timeout) as response:
                return 200 <= response.status < 400
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def _watch_exit(self, running: _RunningPod) -> None:
        code = await running.process.wait()
        if running.terminating:
            return
        self._cancel_probe(running)
        running.ready = False
        tail = running.log_path.read_text(errors="replace")[-500:].strip() if running.log_path.exists() else ""
        await self._report_pod(running, f"process exited with code {code}: {tail}", phase="Failed")

    async def _terminate(self, running: _RunningPod, seconds: float) -> None:
        process = running.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), seconds)
            except TimeoutError:
                log.warning("pod %s/%s did not exit %.1fs after SIGTERM; killing it",
                            running.spec.namespace, running.spec.name, seconds)
                _kill_group(process.pid)  # its whole session: also whatever it started
        await process.wait()

    def _cancel_probe(self, running: _RunningPod) -> None:
        if running.tasks:
            running.tasks[0].cancel()

    async def _report_pod(self, running: _RunningPod, message: str, phase: str = "Running") -> None:
        spec = running.spec
        await self._report(spec.namespace, spec.name, phase, running.ready, running.port, message)

    async def _report(
        self, namespace: str, name: str, phase: str, ready: bool, port: int | None, message: str
    ) -> None:
        report = PodStatusReport(namespace, name, phase=phase, ready=ready, port=port, message=message)
        try:
            await self._sink(report)
        except Exception:  # the sink belongs to the emulator; its failure must not stop the probes
            log.exception("status sink failed for pod %s/%s", namespace, name)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _project_root() -> str:
    return str(Path(__file__).resolve().parent.parent)

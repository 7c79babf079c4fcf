"""The basic pod runtime: a pod is Running and Ready after a delay, unless its probe says it never will be.

A container whose readinessProbe is `exec: {command: ["false"]}` (or `["/bin/false"]`) never becomes
ready. That is how tests, which must also pass on a real cluster, make a canary that never gets ready.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from .runtime import PodStatusReport, ReportSink

_FAILING_COMMANDS = (["false"], ["/bin/false"], ["/usr/bin/false"])


def never_ready(pod: Mapping[str, Any]) -> bool:
    for container in (pod.get("spec") or {}).get("containers") or []:
        command = (((container.get("readinessProbe") or {}).get("exec") or {}).get("command"))
        if command in _FAILING_COMMANDS:
            return True
    return False


class TimerRuntime:
    """Implements `sandbox.runtime.PodRuntime` with timers instead of processes."""

    def __init__(self, sink: ReportSink, *, ready_delay: float = 0.2) -> None:
        self._sink = sink
        self.ready_delay = ready_delay
        self._pods: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def start(self, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]))
        self._pods[key] = asyncio.get_running_loop().create_task(self._run(key, never_ready(pod)))

    async def _run(self, key: tuple[str, str], hopeless: bool) -> None:
        await asyncio.sleep(self.ready_delay)
        message = "readiness probe always fails" if hopeless else ""
        await self._sink(PodStatusReport(key[0], key[1], "Running", ready=not hopeless, message=message))

    async def stop(self, namespace: str, name: str, grace_seconds: float) -> None:
        task = self._pods.pop((namespace, name), None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        for key in list(self._pods):
            await self.stop(*key, 0)

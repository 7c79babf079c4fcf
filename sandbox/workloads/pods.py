"""The kubelet's part: hand pods to a PodRuntime, write its reports into Pod status, finish graceful deletion."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from ..apiserver.changes import WatchEvent
from ..apiserver.storage import JsonObject, Store
from ..runtime import PodRuntime, PodStatusReport
from .objects import condition, copy_of, now, write_object, write_status

PORT_ANNOTATION = "sandbox.weir.dev/port"  # where the runtime really serves the pod's first port (loopback)

log = logging.getLogger(__name__)


def _conditions(pod: JsonObject, ready: bool, stamp: str) -> list[JsonObject]:
    wanted = {"Initialized": True, "Ready": ready, "ContainersReady": ready, "PodScheduled": True}
    result = []
    for kind, value in wanted.items():
        status = "True" if value else "False"
        previous = condition(pod, kind)
        transition = previous["lastTransitionTime"] if previous and previous.get("status") == status else stamp
        result.append({"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": transition})
    return result


def pod_status(pod: JsonObject, report: PodStatusReport) -> JsonObject:
    stamp = now()
    previous = pod.get("status") or {}
    running = report.phase == "Running"
    containers = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        earlier = previous.get("containerStatuses") or []
        old: JsonObject = next((c for c in earlier if c.get("name") == container.get("name")), {})
        started_at = ((old.get("state") or {}).get("running") or {}).get("startedAt") or stamp
        state = {"running": {"startedAt": started_at}} if running else \
            {"waiting": {"reason": "ContainerCreating"}} if report.phase == "Pending" else \
            {"terminated": {"exitCode": 0 if report.phase == "Succeeded" else 1, "reason": report.phase}}
        containers.append({"name": container.get("name"), "image": container.get("image", ""), "imageID": "",
                           "containerID": f"sandbox://{pod['metadata']['uid']}/{container.get('name')}",
                           "ready": report.ready and running, "started": running, "restartCount": 0,
                           "state": state})
    status: JsonObject = {
        "phase": report.phase,
        "conditions": _conditions(pod, report.ready and running, stamp),
        "hostIP": "127.0.0.1",
        "podIP": report.pod_ip,
        "podIPs": [{"ip": report.pod_ip}],
        "startTime": previous.get("startTime") or stamp,
        "containerStatuses": containers,
        "qosClass": "BestEffort",
    }
    if report.message:
        status["message"] = report.message
    return status


class PodRunner:
    """Bridges store events and a PodRuntime; remembers precisely when each pod became ready."""

    def __init__(self, store: Store, runtime: PodRuntime) -> None:
        self.store = store
        self.runtime = runtime
        self.pods = store.registry.resource("", "pods")
        self._running: set[tuple[str, str]] = set()
        self._stopping: set[tuple[str, str]] = set()
        self._ready_at: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        store.handle_termination(self.pods)

    def ready_since(self, pod: JsonObject) -> float | None:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            return None
        ready = condition(pod, "Ready")
        if ready is None or ready.get("status") != "True":
            return None
        return self._ready_at.get((meta["namespace"], meta["name"]), time.time())

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("pod runtime call failed", exc_info=task.exception())

    def on_event(self, event: WatchEvent) -> None:
        if event.store_key != self.pods.store_key:
            return
        meta = event.object["metadata"]
        key = (meta["namespace"], meta["name"])
        if event.type == "ADDED" and key not in self._running:
            self._running.add(key)
            self._spawn(self.runtime.start(event.object))
        elif event.type != "ADDED" and (meta.get("deletionTimestamp") or event.type == "DELETED") \
                and key in self._running and key not in self._stopping:
            self._stopping.add(key)
            grace = float(meta.get("deletionGracePeriodSeconds") or 0)
            self._spawn(self._stop(key, grace))

    async def _stop(self, key: tuple[str, str], grace: float) -> None:
        try:
            await self.runtime.stop(key[0], key[1], grace)
        finally:
            self._running.discard(key)
            self._stopping.discard(key)
            self._ready_at.pop(key, None)
            self.store.finish_termination(self.pods, *key)

    async def report(self, report: PodStatusReport) -> None:
        """The runtime's sink: write what it saw, unless the pod is gone or already on its way out."""
        key = (report.namespace, report.name)
        pod = self.store.find(self.pods, *key)
        if pod is None or key not in self._running:
            return
        if report.ready and report.phase == "Running":
            self._ready_at.setdefault(key, time.time())
        else:
            self._ready_at.pop(key, None)
        if report.port is not None and (pod["metadata"].get("annotations") or {}).get(PORT_ANNOTATION) != str(
                report.port):
            updated = copy_of(pod)
            updated["metadata"].setdefault("annotations", {})[PORT_ANNOTATION] = str(report.port)
            pod = write_object(self.store, self.pods, updated)
        write_status(self.store, self.pods, pod, pod_status(pod, report))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self.runtime.close()

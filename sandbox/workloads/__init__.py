"""The sandbox's stand-in for kube-controller-manager and the kubelet.

Controllers run in-process on the store's event loop: every store change enqueues the objects it
affects, one worker drains the queue (keys are deduplicated), and a pass may ask to look again after
a delay (minReadySeconds, progress deadlines).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ..apiserver.changes import WatchEvent
from ..apiserver.storage import Store
from ..runtime import PodRuntime, ReportSink
from .deployments import sync_deployment
from .endpoints import sync_endpoints
from .objects import controller_ref
from .pods import PORT_ANNOTATION, PodRunner
from .replicasets import sync_replicaset

RuntimeFactory = Callable[[ReportSink], PodRuntime]
Key = tuple[str, str, str]  # (what, namespace, name)

log = logging.getLogger(__name__)

__all__ = ["PORT_ANNOTATION", "RuntimeFactory", "Workloads"]


class Workloads:
    def __init__(self, store: Store, *, runtime_factory: RuntimeFactory | None = None,
                 ready_delay: float = 0.2) -> None:
        self.store = store
        if runtime_factory is None:
            from ..timer_runtime import TimerRuntime

            def runtime_factory(sink: ReportSink) -> PodRuntime:
                return TimerRuntime(sink, ready_delay=ready_delay)

        self.pods = PodRunner(store, runtime_factory(self._report))
        self._pending: dict[Key, None] = {}
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._selectors: dict[tuple[str, str], dict[str, Any]] = {}  # (ns, Service) -> its selector
        self._selecting: dict[tuple[str, str, str], set[str]] = {}  # (ns, label, value) -> Services selecting it

    async def _report(self, report: Any) -> None:
        await self.pods.report(report)

    def start(self) -> None:
        for service in self.store.list(self.store.registry.resource("", "services")):
            meta, selector = service["metadata"], (service.get("spec") or {}).get("selector") or {}
            self._index_selector(meta.get("namespace", ""), meta["name"], selector)
        self.store.subscribe(self._on_event)
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        await self.pods.close()

    # ----- queueing
    def add(self, key: Key) -> None:
        self._pending[key] = None
        self._wake.set()

    def add_after(self, key: Key, delay: float) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            self.add(key)

        handle = loop.call_later(max(0.0, delay), fire)
        self._timers.add(handle)

    def _on_event(self, event: WatchEvent) -> None:
        group, plural = event.store_key
        meta = event.object["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        if (group, plural) == ("apps", "deployments"):
            self.add(("deployment", namespace, name))
        elif (group, plural) == ("apps", "replicasets"):
            self.add(("replicaset", namespace, name))
            self._add_owner(event.object, "Deployment", "deployment")
        elif (group, plural) == ("", "pods"):
            self.pods.on_event(event)
            self._add_owner(event.object, "ReplicaSet", "replicaset")
            if event.type == "DELETED":
                self._wake_deployment_of(event.object)
            self._wake_services_of(event)
        elif (group, plural) == ("", "services"):
            self._index_service(event)
            self.add(("service", namespace, name))

    def _wake_services_of(self, event: WatchEvent) -> None:
        """Only Services whose selector picks the pod (before or after the change) need new Endpoints;
        they are found through an index of selectors, not a scan of the namespace's Services."""
        namespace = event.namespace
        for obj in (event.object, event.old):
            if obj is None:
                continue
            labels = obj["metadata"].get("labels") or {}
            candidates: set[str] = set()
            for label, value in labels.items():
                candidates |= self._selecting.get((namespace, str(label), str(value)), set())
            for name in candidates:
                selector = self._selectors.get((namespace, name)) or {}
                if selector and all(labels.get(k) == v for k, v in selector.items()):
                    self.add(("service", namespace, name))

    def _index_service(self, event: WatchEvent) -> None:
        selector = None if event.type == "DELETED" else (event.object.get("spec") or {}).get("selector")
        self._index_selector(event.namespace, event.object["metadata"]["name"], selector or {})

    def _index_selector(self, namespace: str, name: str, selector: dict[str, Any]) -> None:
        for label, value in self._selectors.pop((namespace, name), {}).items():
            self._selecting.get((namespace, str(label), str(value)), set()).discard(name)
        if selector:
            self._selectors[(namespace, name)] = dict(selector)
            for label, value in selector.items():
                self._selecting.setdefault((namespace, str(label), str(value)), set()).add(name)

    def _wake_deployment_of(self, pod: dict[str, Any]) -> None:
        """Recreate waits for old pods to vanish, which changes no ReplicaSet status: wake the Deployment."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        namespace = pod["metadata"].get("namespace", "")
        rs = self.store.find(self.store.registry.resource("apps", "replicasets"), namespace, str(ref.get("name")))
        if rs is not None:
            self._add_owner(rs, "Deployment", "deployment")

    def _add_owner(self, obj: dict[str, Any], kind: str, what: str) -> None:
        ref = controller_ref(obj)
        if ref is not None and ref.get("kind") == kind:
            self.add((what, obj["metadata"].get("namespace", ""), str(ref.get("name"))))

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                key = next(iter(self._pending))
                del self._pending[key]
                try:
                    again = self._sync(key)
                except Exception:
                    log.exception("sandbox controller failed on %s; retrying", key)
                    again = 0.5
                if again is not None:
                    self.add_after(key, again)
            await asyncio.sleep(0)

    def _sync(self, key: Key) -> float | None:
        what, namespace, name = key
        if what == "deployment":
            return sync_deployment(self.store, namespace, name)
        if what == "replicaset":
            return sync_replicaset(self.store, namespace, name, self.pods.ready_since)
        if what == "service":
            sync_endpoints(self.store, namespace, name)
        return None

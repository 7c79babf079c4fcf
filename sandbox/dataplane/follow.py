"""Keep a data plane in step with a cluster: list and watch Services, Pods and Ingresses through the
Kubernetes API (the sandbox's emulator or any API server) and re-apply routing on every change.

    follower = ClusterFollower(plane, api_url, token)
    task = asyncio.create_task(follower.run())
    await follower.wait_synced()      # the first full picture is routed
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from sandbox.dataplane.nginx import DataPlaneError, NginxDataPlane

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchedKind:
    name: str
    path: str  # the all-namespaces collection


WATCHED = (
    WatchedKind("services", "/api/v1/services"),
    WatchedKind("pods", "/api/v1/pods"),
    WatchedKind("ingresses", "/apis/networking.k8s.io/v1/ingresses"),
)
_RETRY_SECONDS = 0.5
# Changes come in bursts (a rollout step touches pods, endpoints and an Ingress at once): gather them
# into one reload rather than reloading nginx for each.
_SETTLE_SECONDS = 0.02


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class ClusterFollower:
    def __init__(self, plane: NginxDataPlane, api_url: str, token: str | None = None) -> None:
        self.plane = plane
        self.api_url = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._objects: dict[str, dict[tuple[str, str], Mapping[str, Any]]] = {k.name: {} for k in WATCHED}
        self._listed: set[str] = set()
        self._changed = asyncio.Event()
        self._synced = asyncio.Event()
        self.last_error = ""  # the data plane's last refusal, if any

    async def wait_synced(self, timeout: float = 30) -> None:
        await asyncio.wait_for(self._synced.wait(), timeout)

    async def run(self) -> None:
        """Follow until cancelled."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
        async with aiohttp.ClientSession(headers=self._headers, timeout=timeout) as session:
            watchers = [asyncio.create_task(self._follow(session, kind)) for kind in WATCHED]
            try:
                await self._apply_changes()
            finally:
                for task in watchers:
                    task.cancel()
                for task in watchers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _apply_changes(self) -> None:
        while True:
            await self._changed.wait()
            await asyncio.sleep(_SETTLE_SECONDS)
            self._changed.clear()
            if len(self._listed) < len(WATCHED):
                continue  # half a picture would route to nowhere
            try:
                await self.plane.apply(
                    self._objects["services"].values(), self._objects["pods"].values(),
                    self._objects["ingresses"].values(),
                )
                self.last_error = ""
            except DataPlaneError as error:
                self.last_error = str(error)
                log.error("data plane kept its previous routing: %s", error)
            for problem in self.plane.problems:
                log.warning("%s", problem)
            self._synced.set()

    async def _follow(self, session: aiohttp.ClientSession, kind: WatchedKind) -> None:
        while True:
            try:
                version = await self._list(session, kind)
                while True:
                    version = await self._watch(session, kind, version)
            except _Gone:
                continue
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                log.warning("following %s: %s; retrying", kind.name, error)
                await asyncio.sleep(_RETRY_SECONDS)

    async def _list(self, session: aiohttp.ClientSession, kind: WatchedKind) -> str:
        async with session.get(self.api_url + kind.path) as response:
            response.raise_for_status()
            body = await response.json()
        self._objects[kind.name] = {_key(item): item for item in body.get("items") or []}
        self._listed.add(kind.name)
        self._changed.set()
        return str(body.get("metadata", {}).get("resourceVersion", ""))

    async def _watch(self, session: aiohttp.ClientSession, kind: WatchedKind, version: str) -> str:
        """One watch request; returns the resourceVersion to resume from when the server ends it."""
        params = {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": "300"}
        async with session.get(self.api_url + kind.path, params=params) as response:
            if response.status == 410:
                raise _Gone
            response.raise_for_status()
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone
                    raise ValueError(f"watch error: {obj.get('message')}")
                version = str(obj.get("metadata", {}).get("resourceVersion") or version)
                if event.get("type") == "BOOKMARK":
                    continue
                if event.get("type") == "DELETED":
                    self._objects[kind.name].pop(_key(obj), None)
                else:
                    self._objects[kind.name][_key(obj)] = obj
                self._changed.set()
        return version


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace", ""), meta.get("name", ""))

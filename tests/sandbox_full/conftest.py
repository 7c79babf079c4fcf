"""Fixtures for the full sandbox's real parts: demo app processes, nginx, object builders.

Every process here is started by the test that needs it and killed by its PID afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sandbox.dataplane import POD_PORT_ANNOTATION, NginxDataPlane

ROOT = Path(__file__).resolve().parents[2]
CANARY = "nginx.ingress.kubernetes.io/"


@dataclass
class DemoProcess:
    process: subprocess.Popen[bytes]
    port: int
    version: str
    pod: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def spawn_demo_app(version: str, pod: str, **env: str) -> DemoProcess:
    """A demo app on a socket bound here (so it is reachable the moment this returns)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=512)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.demoapp"],
            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "VERSION": version,
                 "POD_NAME": pod, "LISTEN_FD": str(listener.fileno()), **env},
            pass_fds=(listener.fileno(),), stdout=subprocess.DEVNULL, start_new_session=True,
        )
        return DemoProcess(process, int(listener.getsockname()[1]), version, pod)
    finally:
        listener.close()


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


@pytest.fixture
def demo_apps() -> Iterator[Callable[..., DemoProcess]]:
    started: list[DemoProcess] = []

    def start(version: str = "v1", pod: str = "pod-1", **env: str) -> DemoProcess:
        app = spawn_demo_app(version, pod, **env)
        started.append(app)
        return app

    yield start
    for app in started:
        kill(app.process)


async def wait_for(condition: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    """Poll an async condition until it returns something truthy; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = await condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


TOKEN = "s3cret-token"  # the webhook bearer token in Alertmanager tests


class Receiver:
    """A webhook endpoint that records what Alertmanager sends."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((request.headers.get("Authorization", ""), await request.json()))
        return web.Response(text="ok")

    async def first(self, status: str) -> tuple[str, dict[str, Any]]:
        async def found() -> tuple[str, dict[str, Any]] | None:
            return next((call for call in self.calls if call[1]["status"] == status), None)

        result: tuple[str, dict[str, Any]] = await wait_for(found, 20, f"a {status} notification")
        return result


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/alerts", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    hook.url = f"http://127.0.0.1:{port}/alerts"
    yield hook
    await runner.cleanup()


@pytest.fixture
async def nginx_plane(tmp_path: Path) -> AsyncIterator[NginxDataPlane]:
    plane = NginxDataPlane(workdir=tmp_path / "nginx")
    await plane.start()
    yield plane
    await plane.stop()


# --- Kubernetes objects as the API returns them ----------------------------------------------------


def ingress(name: str, service: str, annotations: Mapping[str, str] | None = None, *,
            host: str = "web.example.com", path: str = "/", path_type: str = "Prefix",
            namespace: str = "default", created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    backend = {"service": {"name": service, "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "annotations": dict(annotations or {}),
                     "creationTimestamp": created},
        "spec": {"rules": [{"host": host, "http": {"paths": [
            {"path": path, "pathType": path_type, "backend": backend}]}}]},
    }


def canary_ingress(name: str, service: str, host: str = "web.example.com", **rules: str) -> dict[str, Any]:
    """rules: annotation suffixes with '_' for '-', e.g. canary_weight="10"."""
    annotations = {CANARY + "canary": "true"} | {CANARY + k.replace("_", "-"): v for k, v in rules.items()}
    return ingress(name, service, annotations, host=host)


def service(name: str, selector: Mapping[str, str], namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": dict(selector), "ports": [{"port": 80, "targetPort": 8080}]}}


def pod(name: str, labels: Mapping[str, str], port: int, *, ready: bool = True, namespace: str = "default",
        terminating: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels),
                                "annotations": {POD_PORT_ANNOTATION: str(port)}}
    if terminating:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "status": {"phase": "Running", "podIP": "127.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def listening_addresses(pid: int) -> set[str]:
    """Local addresses (ip:port, hex-decoded) of the TCP sockets `pid` listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                found.add(f"{_ip(address, width)}:{int(port, 16)}")
    return found


def _ip(hex_address: str, width: int) -> str:
    raw = bytes.fromhex(hex_address)
    if width == 8:
        return ".".join(str(b) for b in reversed(raw))
    return socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))

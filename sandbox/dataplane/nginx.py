"""A real nginx (Debian's) run unprivileged on a free loopback port, configured from Ingresses,
Services and Pods, and reloaded in place (no dropped requests) whenever they change."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import aiohttp

from sandbox.dataplane.endpoints import Obj, pod_port, service_endpoints
from sandbox.dataplane.ingress import routes_from_ingresses
from sandbox.dataplane.nginx_config import NginxLayout, render

_START_ATTEMPTS = 3  # a free port picked by the kernel can be taken by someone else before nginx binds it


class DataPlaneError(RuntimeError):
    """nginx refused a configuration or did not start; the message carries nginx's own words."""


class NginxDataPlane:
    """Usage: `plane = NginxDataPlane(); await plane.start(); await plane.apply(services, pods,
    ingresses)`; send traffic to `plane.url` with the Ingress host (or `<svc>.<ns>.svc`) as Host
    header; `await plane.stop()`."""

    def __init__(self, workdir: Path | None = None, nginx: str | None = None) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="weir-nginx-"))
        self._nginx = nginx or shutil.which("nginx") or "/usr/sbin/nginx"
        self._process: subprocess.Popen[bytes] | None = None
        self._layout: NginxLayout | None = None
        self._generation = 0
        self._applied = ""  # the last configuration nginx runs, rendered with generation 0
        self._lock = asyncio.Lock()
        self.problems: tuple[str, ...] = ()  # Ingress rules the last apply() ignored, and why

    @property
    def port(self) -> int:
        return self._require_layout().listen_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def generation(self) -> int:
        """How many configurations nginx has been given (the running one included)."""
        return self._generation

    async def start(self) -> None:
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _ in range(_START_ATTEMPTS):
            self._layout = NginxLayout(self.workdir, _free_port(), run_as_root=os.geteuid() == 0)
            self._write(render((), {}, self._layout, 0))
            with open(self.workdir / "stderr.log", "ab") as stderr:
                self._process = subprocess.Popen(
                    [*self._base_args(), "-g", "daemon off;"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                    start_new_session=True,
                )
            try:
                await self._wait_for_generation(0, deadline=time.monotonic() + 10)
                return
            except DataPlaneError as error:
                last_error = str(error)
                await self._kill()
        raise DataPlaneError(f"nginx did not start after {_START_ATTEMPTS} attempts: {last_error}")

    async def apply(
        self,
        services: Iterable[Obj],
        pods: Iterable[Obj],
        ingresses: Iterable[Obj],
        port_of: Callable[[Obj], int | None] = pod_port,
    ) -> bool:
        """Route as these objects say; returns whether nginx was reloaded. Ignored Ingress rules are
        listed in `problems`. Raises DataPlaneError (and keeps the old routing) if nginx rejects it."""
        routes, self.problems = routes_from_ingresses(ingresses)
        endpoints = service_endpoints(services, pods, port_of)
        async with self._lock:
            layout = self._require_layout()
            if render(routes, endpoints, layout, 0) == self._applied:
                return False
            text = render(routes, endpoints, layout, self._generation + 1)
            await self._test(text)
            self._generation += 1
            self._write(text)
            self._applied = render(routes, endpoints, layout, 0)
            assert self._process is not None
            old_workers = _children(self._process.pid)
            os.kill(self._process.pid, signal.SIGHUP)  # what `nginx -s reload` does, minus a process
            deadline = time.monotonic() + 10
            await self._wait_for_generation(self._generation, deadline)
            await self._wait_until_retired(old_workers, deadline)
            return True

    async def stop(self) -> None:
        """Graceful stop (in-flight requests finish), then kill what is left; removes a temp workdir."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGQUIT)
            deadline = time.monotonic() + 5
            while self._process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        await self._kill()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def config_text(self) -> str:
        return (self.workdir / "nginx.conf").read_text()

    def _require_layout(self) -> NginxLayout:
        if self._layout is None:
            raise DataPlaneError("the data plane is not started; await start() first")
        return self._layout

    def _base_args(self, config: str = "nginx.conf") -> list[str]:
        prefix = str(self.workdir) + "/"
        return [self._nginx, "-p", prefix, "-c", prefix + config, "-e", prefix + "error.log"]

    def _write(self, text: str, name: str = "nginx.conf") -> None:
        staged = self.workdir / (name + ".staged")
        staged.write_text(text)
        os.replace(staged, self.workdir / name)  # nginx never reads a half-written file

    async def _test(self, text: str) -> None:
        self._write(text, "nginx.conf.next")
        process = await asyncio.create_subprocess_exec(
            *self._base_args("nginx.conf.next"), "-t", "-q",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        if process.returncode != 0:
            raise DataPlaneError(f"nginx rejected the rendered configuration: {err.decode().strip()}")

    async def _wait_for_generation(self, generation: int, deadline: float) -> None:
        layout = self._require_layout()
        # Fresh connections each time: a keep-alive connection would stay on an old worker.
        connector = aiohttp.UnixConnector(path=str(layout.control_socket), force_close=True)
        timeout = aiohttp.ClientTimeout(total=1)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            while True:
                if self._process is None or self._process.poll() is not None:
                    raise DataPlaneError(f"nginx exited: {self._stderr()}")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
                    async with session.get("http://nginx/generation") as response:
                        if int((await response.text()).strip()) >= generation:
                            return
                if time.monotonic() > deadline:
                    raise DataPlaneError(f"nginx did not load configuration {generation}: {self._stderr()}")
                await asyncio.sleep(0.01)

    async def _wait_until_retired(self, workers: Iterable[int], deadline: float) -> None:
        """New workers answering is not enough: until an old worker closes its listening socket it
        still accepts connections and serves them with the old routes."""
        pending = set(workers)
        while pending:
            pending = {pid for pid in pending if not _is_retired(pid)}
            if pending and time.monotonic() > deadline:
                raise DataPlaneError(f"old nginx workers {sorted(pending)} kept accepting after the reload")
            await asyncio.sleep(0.005)

    def _stderr(self) -> str:
        tails = []
        for name in ("stderr.log", "error.log"):
            log = self.workdir / name
            tails.append(log.read_text(errors="replace")[-1000:].strip() if log.exists() else "")
        return " | ".join(t for t in tails if t) or "(nginx logged nothing)"

    async def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            # nginx workers outlive a killed master; they share its process group (its own session).
            # A master that exited on its own has already waited for its workers.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.wait)


def _children(pid: int) -> set[int]:
    """PIDs whose parent is `pid` (kernels without /proc/PID/task/*/children: scan every stat)."""
    children: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing paren.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.add(int(stat.parent.name))
    return children


def _is_retired(pid: int) -> bool:
    """Gone, or retitled: an nginx worker renames itself in the same step that closes its listeners."""
    try:
        return b"shutting down" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

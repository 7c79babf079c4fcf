"""Running the emulator: `async with Sandbox() as sb` in async code, `with SandboxThread() as sb` in sync tests."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from ..kubeconfig import client_configuration, write_kubeconfig
from .handlers import ApiServer
from .storage import Store

if TYPE_CHECKING:
    from ..workloads import RuntimeFactory

T = TypeVar("T")


def _bound_port(site: web.TCPSite) -> int:
    """The port the OS picked for port 0 (aiohttp keeps the listening sockets on its private server)."""
    server: Any = site._server
    return int(server.sockets[0].getsockname()[1])


class Sandbox:
    """The API emulator on 127.0.0.1 plus the workload controllers that stand in for the kubelet and
    kube-controller-manager.

    Knobs: `ready_delay` (seconds until a pod of the timer runtime is ready), `watch_window` (events kept
    for watch resumption; older resourceVersions get 410 Gone), `bookmark_interval`, `runtime_factory`
    (a `sandbox.workloads.RuntimeFactory`; default: the timer runtime), `workloads=False` for a bare API.
    """

    def __init__(self, *, directory: str | Path | None = None, port: int = 0, ready_delay: float = 0.2,
                 watch_window: int = 10_000, bookmark_interval: float = 5.0,
                 runtime_factory: RuntimeFactory | None = None, workloads: bool = True) -> None:
        self._directory = Path(directory) if directory else None
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        self._port = port
        self.ready_delay = ready_delay
        self.store = Store(watch_window=watch_window)
        self.api = ApiServer(self.store, bookmark_interval=bookmark_interval)
        self._runtime_factory = runtime_factory
        self._with_workloads = workloads
        self._runner: web.AppRunner | None = None
        self._workloads: Any = None
        self.url = ""
        self.kubeconfig_path = Path()

    async def start(self) -> Sandbox:
        if self._directory is None:
            self._temp = tempfile.TemporaryDirectory(prefix="weir-sandbox-")
            self._directory = Path(self._temp.name)
        if self._with_workloads:
            from ..workloads import Workloads

            self._workloads = Workloads(self.store, runtime_factory=self._runtime_factory,
                                        ready_delay=self.ready_delay)
            self._workloads.start()
        self._runner = web.AppRunner(self.api.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True)
        await site.start()
        port = _bound_port(site)
        self.url = f"http://127.0.0.1:{port}"
        self.api.server_address = f"127.0.0.1:{port}"
        # Written last: the file's existence is the "ready to answer" signal for other processes.
        self.kubeconfig_path = write_kubeconfig(self._directory / "kubeconfig", self.url)
        return self

    async def close(self) -> None:
        self.api.closing.set()
        if self._workloads is not None:
            await self._workloads.close()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.store.close()
        if self._temp is not None:
            self._temp.cleanup()

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def api_client(self) -> Any:
        """A `kubernetes.client.ApiClient` configured for this sandbox (the caller closes it)."""
        from kubernetes import client

        return client.ApiClient(client_configuration(self.url))


class SandboxThread:
    """A Sandbox on its own event loop in a background thread, for synchronous code and tests."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="weir-sandbox", daemon=True)
        self.sandbox: Sandbox | None = None

    def __enter__(self) -> SandboxThread:
        self._thread.start()
        self.sandbox = self.run(self._start())
        return self

    async def _start(self) -> Sandbox:
        return await Sandbox(**self._options).start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.sandbox is not None:
            with contextlib.suppress(Exception):
                self.run(self.sandbox.close(), timeout=10)
            self.sandbox = None
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()

    def run(self, coroutine: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the sandbox's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def call(self, function: Callable[[], T], timeout: float = 30) -> T:
        """Run a plain function on the sandbox's loop (the store is not thread-safe)."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(function())
            except BaseException as error:  # handed to the caller's thread
                future.set_exception(error)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout)

    @property
    def _sb(self) -> Sandbox:
        if self.sandbox is None:
            raise RuntimeError("the sandbox is not running: use `with SandboxThread() as sb:`")
        return self.sandbox

    @property
    def url(self) -> str:
        return self._sb.url

    @property
    def kubeconfig_path(self) -> Path:
        return self._sb.kubeconfig_path

    @property
    def store(self) -> Store:
        return self._sb.store

    def api_client(self) -> Any:
        return self._sb.api_client()

"""The whole local stack for the demo, end-to-end tests and benchmarks: the full sandbox on its own event
loop thread, plus `weir run` as a real process wired to its Prometheus and Alertmanager.

    with Stack() as stack:
        stack.api_client, stack.ingress_url, stack.prometheus_url, stack.controller_url
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from sandbox.full import FullSandbox
from sandbox.prometheus_server import free_port

WEBHOOK_TOKEN = "weir-sandbox-webhook-token"


class Stack:
    def __init__(self, directory: Path | None = None, controller_args: list[str] | None = None,
                 start_controller: bool = True) -> None:
        self._temp = None if directory else tempfile.TemporaryDirectory(prefix="weir-stack-")
        self.directory = Path(directory or self._temp.name)  # type: ignore[union-attr]
        self.controller_args = controller_args or []
        self.start_controller = start_controller
        self.controller_port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="weir-stack", daemon=True)
        self.full: FullSandbox | None = None
        self.controller: subprocess.Popen[bytes] | None = None
        self._api: Any = None

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Stack:
        self._thread.start()
        self.full = FullSandbox(directory=self.directory / "sandbox",
                                webhook_url=f"{self.controller_url}/alerts", webhook_token=WEBHOOK_TOKEN)
        asyncio.run_coroutine_threadsafe(self.full.start(), self._loop).result(60)
        if self.start_controller:
            self.launch_controller()
        return self

    def launch_controller(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        token_file = self.directory / "webhook-token"
        token_file.write_text(WEBHOOK_TOKEN)
        log = open(self.directory / "controller.log", "ab")  # noqa: SIM115 - owned by the process
        self.controller = subprocess.Popen(
            [sys.executable, "-m", "canary.cli", "run", "--kubeconfig", str(self.kubeconfig_path),
             "--listen", f"127.0.0.1:{self.controller_port}", "--prometheus", self.prometheus_url,
             "--webhook-token-file", str(token_file), "--resync", "5", *self.controller_args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.controller.poll() is not None:
                raise RuntimeError(f"weir run exited with {self.controller.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{self.controller_url}/readyz", timeout=1) as answer:
                    if answer.status == 200:
                        return self.controller
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("weir run did not become ready within 60 s")

    def stop_controller(self) -> None:
        if self.controller is not None and self.controller.poll() is None:
            os.killpg(self.controller.pid, signal.SIGTERM)
            try:
                self.controller.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.controller.pid, signal.SIGKILL)
                self.controller.wait(5)

    def stop(self) -> None:
        self.stop_controller()
        if self._api is not None:
            self._api.close()
        if self.full is not None:
            asyncio.run_coroutine_threadsafe(self.full.close(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if self._temp is not None:
            self._temp.cleanup()

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    # --- where things are ---------------------------------------------------------------------------

    @property
    def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.controller_port}"

    @property
    def kubeconfig_path(self) -> Path:
        assert self.full is not None
        return self.full.kubeconfig_path

    @property
    def ingress_url(self) -> str:
        assert self.full is not None
        return self.full.ingress_url

    @property
    def prometheus_url(self) -> str:
        assert self.full is not None and self.full.prometheus is not None
        return self.full.prometheus.url

    @property
    def api_client(self) -> Any:
        if self._api is None:
            from kubernetes import config

            self._api = config.new_client_from_config(config_file=str(self.kubeconfig_path))
        return self._api

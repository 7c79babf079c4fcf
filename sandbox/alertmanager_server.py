"""A real Alertmanager (Debian's 0.25) on a free loopback port, routing every alert to one webhook.

    with AlertmanagerServer(Webhook("http://127.0.0.1:PORT/alerts", bearer_token="s3cret")) as am:
        am.post_alerts([Alert({"alertname": "X", "namespace": "demo", "deployment": "web"})])
        am.address   # 127.0.0.1:PORT, for Prometheus' alerting config

Grouping waits 1 s (group_wait / group_interval) and groups by every label, so each alert reaches the
webhook on its own about a second after it fires. `EXAMPLE_RULES` is a Prometheus rules file with
example alerts (error ratio high, demo app degraded) for tests and the demo.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from sandbox import processes
from sandbox.prometheus_server import PrometheusError, free_port, wait_until

EXAMPLE_RULES: Path = Path(__file__).with_name("alert_rules.yaml")


class AlertmanagerError(RuntimeError):
    """Alertmanager did not start or refused a request; the message carries its own words."""


@dataclass(frozen=True)
class Webhook:
    """Where every alert goes, with the bearer token Alertmanager presents."""

    url: str
    bearer_token: str | None = None
    send_resolved: bool = True


@dataclass(frozen=True)
class Alert:
    """An alert as a client posts it (API v2). An `ends_at` in the past resolves it."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {"labels": dict(self.labels), "annotations": dict(self.annotations)}
        if self.starts_at is not None:
            body["startsAt"] = self.starts_at.astimezone(UTC).isoformat()
        if self.ends_at is not None:
            body["endsAt"] = self.ends_at.astimezone(UTC).isoformat()
        return body


class AlertmanagerServer:
    def __init__(
        self,
        webhook: Webhook,
        *,
        workdir: Path | None = None,
        binary: str = "prometheus-alertmanager",
        group_wait: str = "1s",
        group_interval: str = "1s",
        repeat_interval: str = "1h",
    ) -> None:
        self.webhook = webhook
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="weir-alertmanager-"))
        self.binary = binary
        self.timings = {"group_wait": group_wait, "group_interval": group_interval,
                        "repeat_interval": repeat_interval}
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise AlertmanagerError("Alertmanager is not started; call start() first")
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """host:port, as Prometheus' alerting configuration wants it."""
        return self.url.removeprefix("http://")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "alertmanager.log"

    def config(self) -> dict[str, Any]:
        receiver: dict[str, Any] = {"url": self.webhook.url, "send_resolved": self.webhook.send_resolved}
        if self.webhook.bearer_token is not None:
            # A credentials file keeps the token out of the config (and out of Alertmanager's /status).
            token_file = self.workdir / "webhook-token"
            receiver["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}}
        return {
            "route": {"receiver": "weir", "group_by": ["..."], **self.timings},
            "receivers": [{"name": "weir", "webhook_configs": [receiver]}],
        }

    def start(self, timeout: float = 15.0) -> AlertmanagerServer:
        """Start and wait until /-/ready answers; retries on a port taken in between."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.webhook.bearer_token is not None:
            token_file = self.workdir / "webhook-token"
            token_file.write_text(self.webhook.bearer_token)
            token_file.chmod(0o600)
        config_path = self.workdir / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        for _attempt in range(3):
            self.port = free_port()
            self._launch(config_path)
            try:
                wait_until(self._ready_or_dead, timeout, "Alertmanager to become ready")
            except PrometheusError as error:  # the shared wait helper's timeout
                tail = self._log_tail()
                self.stop()
                raise AlertmanagerError(f"{error}: {tail}") from None
            if self._process is not None and self._process.poll() is None:
                return self
            self._process = None
            if "address already in use" not in self._log_tail():
                break
        raise AlertmanagerError(f"Alertmanager exited on start: {self._log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM by PID, SIGKILL if it lingers; removes the temp dir it made."""
        process, self._process = self._process, None
        processes.stop(process, timeout)
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> AlertmanagerServer:
        return self.start() if self._process is None else self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def post_alerts(self, alerts: Sequence[Alert]) -> None:
        body = json.dumps([alert.to_api() for alert in alerts]).encode()
        self._request("/api/v2/alerts", body, "posted alerts")

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds right now (API v2)."""
        result: list[dict[str, Any]] = json.loads(self._request("/api/v2/alerts", None, "request for its alerts"))
        return result

    def _launch(self, config_path: Path) -> None:
        command = [
            self.binary,
            f"--config.file={config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # empty: no gossip listener (it would bind 0.0.0.0:9094)
            "--log.level=warn",
        ]
        self._process = processes.launch(command, self.log_path)

    def _ready_or_dead(self) -> bool:
        return processes.ready_or_dead(self._process, self.url)

    def _log_tail(self) -> str:
        return processes.log_tail(self.log_path)

    def _request(self, path: str, data: bytes | None, what: str) -> bytes:
        headers = {"Content-Type": "application/json"} if data is not None else {}
        return processes.request(self.url + path, what=what, service="Alertmanager", error=AlertmanagerError,
                                 data=data, headers=headers)


"""A real Prometheus process on a free loopback port, for tests, the sandbox and the demo.

    with PrometheusServer(scrape_configs=[...]) as prom:       # or PrometheusServer() for history only
        prom.push([Series("http_requests_total", {...}, samples)])   # remote write, last ~1 h only
        prom.wait_for("up == 1")                                  # a condition, never a sleep
        prom.url                                                  # http://127.0.0.1:PORT

History older than about an hour goes in before start with `preload(series)` (promtool builds
TSDB blocks in the data directory; Prometheus reads them at once on start). Targets can come from
file_sd files (`write_targets`), which Prometheus re-reads by itself; `reload()` applies a new
config or rule files. The process is started in its own session and stopped by its PID.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import snappy
import yaml

from sandbox import processes

T = TypeVar("T")


class PrometheusError(RuntimeError):
    """Prometheus did not start, refused a request, or a condition was not met in time."""


@dataclass(frozen=True)
class Series:
    """One time series: metric name, labels, and (unix seconds, value) samples in time order."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    samples: Sequence[tuple[float, float]] = ()

    def label_pairs(self) -> list[tuple[str, str]]:
        return sorted({"__name__": self.name, **self.labels}.items())


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(condition: Callable[[], T | None], timeout: float, what: str, poll: float = 0.05) -> T:
    """Poll `condition` until it returns something other than None/False, or raise after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise PrometheusError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


# --- history in bulk: OpenMetrics text for promtool ------------------------------------------------


def _openmetrics_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _openmetrics_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics_text(series: Iterable[Series]) -> str:
    """The OpenMetrics exposition promtool reads: one family at a time, samples in time order."""
    lines: list[str] = []
    for one in sorted(series, key=lambda s: (s.name, s.label_pairs())):
        labels = ",".join(f'{k}="{_openmetrics_label(v)}"' for k, v in sorted(one.labels.items()))
        head = f"{one.name}{{{labels}}}" if labels else one.name
        lines.extend(f"{head} {_openmetrics_value(v)} {t:.3f}" for t, v in one.samples)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def create_blocks(series: Iterable[Series], data_dir: Path, promtool: str = "promtool") -> None:
    """Write `series` as TSDB blocks into `data_dir` (before Prometheus starts on it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".om", delete=False) as source:
        source.write(openmetrics_text(series))
    try:
        done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", source.name, str(data_dir)],
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        os.unlink(source.name)
    if done.returncode != 0:
        raise PrometheusError(f"promtool could not create blocks: {done.stderr.strip() or done.stdout.strip()}")


# --- recent samples: remote write (protobuf by hand; the message is four small types) -----------------


def _varint(number: int) -> bytes:
    number &= (1 << 64) - 1  # int64 on the wire is two's complement
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_write_request(series: Iterable[Series]) -> bytes:
    """prometheus.WriteRequest: timeseries=1 {labels=1 {name=1, value=2}, samples=2 {value=1 double,
    timestamp=2 int64 ms}}; labels sorted by name, as the receiver requires."""
    message = bytearray()
    for one in series:
        body = bytearray()
        for name, value in one.label_pairs():
            body += _field(1, _field(1, name.encode()) + _field(2, value.encode()))
        for timestamp, number in one.samples:
            sample = b"\x09" + struct.pack("<d", number) + b"\x10" + _varint(round(timestamp * 1000))
            body += _field(2, sample)
        message += _field(1, bytes(body))
    return bytes(message)


# --- the server --------------------------------------------------------------------------------------


class PrometheusServer:
    """One Prometheus 2.x process bound to 127.0.0.1 with its own temp directory.

    `scrape_configs` / `rule_files` (name -> YAML text) / `global_config` make up prometheus.yml;
    `workdir` defaults to a fresh temp dir, removed on stop if it was created here.
    """

    def __init__(self, *, scrape_configs: Sequence[Mapping[str, Any]] = (),
                 rule_files: Mapping[str, str] | None = None,
                 global_config: Mapping[str, Any] | None = None,
                 alertmanagers: Sequence[str] = (),
                 workdir: Path | None = None, binary: str = "prometheus", promtool: str = "promtool",
                 extra_flags: Sequence[str] = (), log_level: str = "warn") -> None:
        self._owns_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="weir-prometheus-")) if workdir is None else workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "prometheus.yml"
        self.binary, self.promtool = binary, promtool
        self.extra_flags, self.log_level = list(extra_flags), log_level
        self.scrape_configs = [dict(c) for c in scrape_configs]
        self.rule_files = dict(rule_files or {})
        self.global_config = dict(global_config or {"scrape_interval": "1s", "evaluation_interval": "1s"})
        self.alertmanagers = list(alertmanagers)
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    # configuration ----------------------------------------------------------------------------

    def file_sd_path(self, name: str) -> Path:
        return self.workdir / "file_sd" / f"{name}.json"

    def write_targets(self, name: str, groups: Sequence[Mapping[str, Any]]) -> Path:
        """Write a file_sd file atomically: groups of {"targets": ["127.0.0.1:PORT"], "labels": {...}}.
        Labels such as namespace / pod / deployment become labels of every scraped series."""
        path = self.file_sd_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".tmp")
        staging.write_text(json.dumps([dict(g) for g in groups]))
        staging.replace(path)
        return path

    def file_sd_job(self, job_name: str, name: str, scrape_interval: str = "1s") -> dict[str, Any]:
        """A scrape config that reads its targets from `write_targets(name, ...)`."""
        return {"job_name": job_name, "scrape_interval": scrape_interval,
                "file_sd_configs": [{"files": [str(self.file_sd_path(name))], "refresh_interval": "1s"}]}

    def _write_config(self) -> None:
        rules_dir = self.workdir / "rules"
        rules_dir.mkdir(exist_ok=True)
        for stale in rules_dir.glob("*"):
            if stale.name not in self.rule_files:
                stale.unlink()
        for name, text in self.rule_files.items():
            (rules_dir / name).write_text(text)
        config: dict[str, Any] = {
            "global": self.global_config,
            "rule_files": [str(rules_dir / name) for name in self.rule_files],
            "scrape_configs": self.scrape_configs,
        }
        if self.alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": self.alertmanagers}]}]}
        staging = self.config_path.with_suffix(".tmp")
        staging.write_text(yaml.safe_dump(config, sort_keys=False))
        staging.replace(self.config_path)

    # lifecycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self.port:
            raise PrometheusError("Prometheus is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def preload(self, series: Iterable[Series]) -> None:
        """Load history of any age (within retention) as TSDB blocks; call before `start`."""
        if self._process is not None:
            raise PrometheusError("preload before start: a running Prometheus picks up new blocks only much later")
        create_blocks(series, self.data_dir, self.promtool)

    def start(self, timeout: float = 15.0) -> PrometheusServer:
        """Start and wait until /-/ready answers; retries once on a port taken in between."""
        self._write_config()
        for _attempt in range(3):
            self.port = free_port()
            self._launch()
            try:
                wait_until(self._ready_or_dead, timeout, "Prometheus to become ready")
            except PrometheusError:
                self.stop(remove=False)
                raise
            if self._process is not None and self._process.poll() is None:
                return self
            if "address already in use" not in self._log_tail():
                break
        raise PrometheusError(f"Prometheus exited on start: {self._log_tail()}")

    def _launch(self) -> None:
        command = [
            self.binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
            "--web.enable-remote-write-receiver", f"--log.level={self.log_level}", *self.extra_flags,
        ]
        self._process = processes.launch(command, self.log_path)

    def _ready_or_dead(self) -> bool:
        return processes.ready_or_dead(self._process, self.url)

    def _log_tail(self) -> str:
        return processes.log_tail(self.log_path)

    def stop(self, timeout: float = 10.0, *, remove: bool = True) -> None:
        """SIGTERM the process by PID, SIGKILL if it lingers; remove the temp dir it made."""
        process, self._process = self._process, None
        processes.stop(process, timeout)
        if remove and self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self.start() if self._process is None else self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def reload(self, *, scrape_configs: Sequence[Mapping[str, Any]] | None = None,
               rule_files: Mapping[str, str] | None = None) -> None:
        """Rewrite the config (and rule files) and apply it; Prometheus answers once it has."""
        if scrape_configs is not None:
            self.scrape_configs = [dict(c) for c in scrape_configs]
        if rule_files is not None:
            self.rule_files = dict(rule_files)
        self._write_config()
        self._request("/-/reload", data=b"", what="reload")

    # data ---------------------------------------------------------------------------------------

    def push(self, series: Iterable[Series]) -> None:
        """Remote-write samples (queryable at once). Once it holds recent samples, Prometheus rejects
        the whole request if any sample is older than about an hour: use `preload` for history."""
        body = snappy.compress(encode_write_request(series))
        self._request("/api/v1/write", data=body, what="remote write", headers={
            "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0"})

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector (raises PrometheusError with Prometheus' reason)."""
        params = {"query": promql} | ({"time": repr(at)} if at is not None else {})
        answer = self._request("/api/v1/query?" + urllib.parse.urlencode(params), what="query")
        result: list[dict[str, Any]] = json.loads(answer)["data"]["result"]
        return result

    def wait_for(self, promql: str, timeout: float = 20.0,
                 accept: Callable[[list[dict[str, Any]]], bool] = bool) -> list[dict[str, Any]]:
        """Wait until an instant query's result satisfies `accept` (default: not empty)."""
        def attempt() -> list[dict[str, Any]] | None:
            try:
                result = self.query(promql)
            except PrometheusError:
                return None
            return result if accept(result) else None

        return wait_until(attempt, timeout, f"`{promql}` to return data")

    def wait_for_targets(self, count: int, timeout: float = 20.0) -> None:
        """Wait until `count` targets have been scraped successfully (the first scrape comes
        several seconds after start, when service discovery first syncs)."""
        self.wait_for("up == 1", timeout, accept=lambda result: len(result) >= count)

    def _request(self, path: str, *, what: str, data: bytes | None = None,
                 headers: Mapping[str, str] | None = None) -> bytes:
        return processes.request(self.url + path, what=what, service="Prometheus", error=PrometheusError,
                                 data=data, headers=headers)

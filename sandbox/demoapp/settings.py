"""The demo app's behaviour, read once from its environment (a Pod's container env)."""

from __future__ import annotations

import math
import socket
from collections.abc import Mapping
from dataclasses import dataclass

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class DemoAppSettings:
    """Env var names are in brackets; every one is optional."""

    version: str = "v1"  # [VERSION] reported in every answer, so a test can tell which arm served
    pod_name: str = "demoapp"  # [POD_NAME, else HOSTNAME]
    host: str = "127.0.0.1"  # [HOST]
    port: int = 8080  # [PORT]; 0 picks a free port and prints it
    listen_fd: int | None = None  # [LISTEN_FD] an already bound socket handed over by the runtime
    error_rate: float = 0.0  # [ERROR_RATE] share of answers that are 500, 0..1
    latency_ms: float = 0.0  # [LATENCY_MS] median added latency
    latency_jitter: float = 0.0  # [LATENCY_JITTER] sigma of the lognormal around the median
    ready_after_seconds: float = 0.0  # [READY_AFTER_SECONDS] /readyz answers 503 until then
    fail_readiness: bool = False  # [FAIL_READINESS] /readyz never succeeds
    degraded: bool = False  # [DEGRADED] sets the demoapp_degraded gauge an example alert rule watches
    shutdown_grace_seconds: float = 30.0  # [SHUTDOWN_GRACE_SECONDS] how long SIGTERM waits for in-flight

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DemoAppSettings:
        """Raises ValueError naming the variable and a valid example when a value is malformed."""
        fd = env.get("LISTEN_FD", "").strip()
        return cls(
            version=env.get("VERSION", "").strip() or cls.version,
            pod_name=env.get("POD_NAME") or env.get("HOSTNAME") or socket.gethostname(),
            host=env.get("HOST", "").strip() or cls.host,
            port=int(_number(env, "PORT", cls.port, 0, 65535, "8080")),
            listen_fd=int(_number(env, "LISTEN_FD", 0, 0, 1 << 20, "3")) if fd else None,
            error_rate=_number(env, "ERROR_RATE", 0.0, 0.0, 1.0, "0.05"),
            latency_ms=_number(env, "LATENCY_MS", 0.0, 0.0, 60_000.0, "20"),
            latency_jitter=_number(env, "LATENCY_JITTER", 0.0, 0.0, 5.0, "0.3"),
            ready_after_seconds=_number(env, "READY_AFTER_SECONDS", 0.0, 0.0, 3600.0, "2"),
            fail_readiness=_flag(env, "FAIL_READINESS"),
            degraded=_flag(env, "DEGRADED"),
            shutdown_grace_seconds=_number(env, "SHUTDOWN_GRACE_SECONDS", 30.0, 0.0, 3600.0, "30"),
        )


def _number(
    env: Mapping[str, str], name: str, default: float, low: float, high: float, example: str
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # also rejects nan
        raise ValueError(f"{name}={raw!r} is not a number in [{low:g}, {high:g}]; set e.g. {name}={example}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean; set {name}=true or {name}=false")

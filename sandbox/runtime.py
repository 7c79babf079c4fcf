"""How the sandbox runs pods: the seam between the API emulator's workload controllers and
whatever makes a pod "real" (a timer in the basic sandbox, a local process with `--full`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class PodStatusReport:
    """What the runtime observed about one pod; the emulator writes it into the Pod's status."""

    namespace: str
    name: str
    phase: str  # Pending | Running | Succeeded | Failed
    ready: bool
    pod_ip: str = "127.0.0.1"
    port: int | None = None  # where the pod's first container port really listens (loopback)
    message: str = ""


ReportSink = Callable[[PodStatusReport], Awaitable[None]]


class PodRuntime(Protocol):
    """Started by the sandbox with a sink for status reports."""

    async def start(self, pod: Mapping[str, Any]) -> None:
        """Begin running `pod` (the stored Pod object); report status through the sink."""

    async def stop(self, namespace: str, name: str, grace_seconds: float) -> None:
        """Terminate gracefully (preStop, SIGTERM, drain) within grace_seconds; return when gone."""

    async def close(self) -> None:
        """Stop everything at once (sandbox shutdown)."""

"""Alertmanager webhook payloads (version 4): parsing with clear errors, and matching alerts to releases.

Pure functions; the HTTP handler in canary/server.py does authentication and size limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canary.config import AlertMatcher
from canary.workload import CANARY_SUFFIX, PRIMARY_SUFFIX


class PayloadError(ValueError):
    """The body is not an Alertmanager webhook payload; the message says which field is wrong."""


@dataclass(frozen=True)
class Alert:
    status: str  # firing | resolved
    labels: Mapping[str, str]
    annotations: Mapping[str, str]

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "unnamed alert")

    def describe(self) -> str:
        summary = self.annotations.get("summary") or self.annotations.get("description") or ""
        return f"{self.name}" + (f" ({summary})" if summary else "")


def parse_payload(body: Any) -> list[Alert]:
    if not isinstance(body, dict):
        raise PayloadError("body: expected a JSON object (Alertmanager webhook payload version 4)")
    version = body.get("version")
    if version is not None and str(version) != "4":
        raise PayloadError(f"version: {version!r} is not supported; Alertmanager sends version \"4\"")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts: expected a list of alerts")
    parsed: list[Alert] = []
    for i, item in enumerate(alerts):
        if not isinstance(item, dict):
            raise PayloadError(f"alerts[{i}]: expected an object")
        labels = item.get("labels") or {}
        annotations = item.get("annotations") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise PayloadError(f"alerts[{i}].labels: expected an object of strings")
        if not isinstance(annotations, dict):
            raise PayloadError(f"alerts[{i}].annotations: expected an object")
        status = item.get("status", body.get("status", "firing"))
        if status not in ("firing", "resolved"):
            raise PayloadError(f"alerts[{i}].status: {status!r} is neither firing nor resolved")
        parsed.append(Alert(status, labels, {k: str(v) for k, v in annotations.items()}))
    return parsed


def target_of(alert: Alert) -> tuple[str, str] | None:
    """(namespace, Deployment name) an alert is about: its `deployment` label, else its `service`
    label (the apex, or `<name>-canary` / `<name>-primary`)."""
    namespace = alert.labels.get("namespace")
    name = alert.labels.get("deployment") or alert.labels.get("service")
    if not namespace or not name:
        return None
    for suffix in (CANARY_SUFFIX, PRIMARY_SUFFIX):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return namespace, name


def selected_by(alert: Alert, groups: Sequence[Sequence[AlertMatcher]]) -> bool:
    """No matchers configured: every alert about the workload counts. Otherwise any group whose
    matchers all match."""
    if not groups:
        return True
    return any(all(m.matches(alert.labels) for m in group) for group in groups)

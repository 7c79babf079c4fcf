"""Everything about alerts in one place: the Alertmanager webhook payload (version 4) parsed with clear
errors, which release an alert names, how it is recorded, and the matching rule the state machine applies.

The path of an alert (DESIGN §3): the webhook parses the batch, keeps the firing alerts that name a
release in progress, and records them on that Deployment (annotation `weir.dev/alerts`) *before* it
answers 200, so a crash right after the answer loses nothing; then it wakes the release. The pure state
machine decides whether a recorded alert passes the release's `rollback-on-alerts` matchers
(`firing_alert`), and the reconciler removes the record in the same write that starts the rollback.

Nothing here imports the Kubernetes client: the intake is handed its lookup and its writer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from canary.config import AlertMatcher
from canary.workload import CANARY_SUFFIX, PRIMARY_SUFFIX

log = logging.getLogger("weir.alerts")

KEPT_PER_DEPLOYMENT = 10  # recorded alerts beyond this are not needed: the first match rolls back
MAX_LABEL_CHARS = 256  # labels longer than this are cut when recorded (annotations have a size limit)

Key = tuple[str, str]


class PayloadError(ValueError):
    """The body is not an Alertmanager webhook payload; the message says which field is wrong."""


@dataclass(frozen=True)
class Alert:
    status: str  # firing | resolved
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    received_at: float = 0.0  # unix seconds when Weir recorded it (0: not recorded yet)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "unnamed alert")

    def describe(self) -> str:
        summary = self.annotations.get("summary") or self.annotations.get("description") or ""
        return f"{self.name}" + (f" ({summary[:200]})" if summary else "")

    def fingerprint(self) -> str:
        return json.dumps(sorted(self.labels.items()), separators=(",", ":"))


# --- parse --------------------------------------------------------------------------------------------


def parse_payload(body: Any) -> list[Alert]:
    if not isinstance(body, dict):
        raise PayloadError("body: expected a JSON object (Alertmanager webhook payload version 4)")
    version = body.get("version")
    if version is not None and str(version) != "4":
        raise PayloadError(f"version: {str(version)[:40]!r} is not supported; Alertmanager sends version \"4\"")
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
            raise PayloadError(f"alerts[{i}].status: {str(status)[:40]!r} is neither firing nor resolved")
        parsed.append(Alert(status, labels, {k: str(v) for k, v in annotations.items()}))
    return parsed


# --- match --------------------------------------------------------------------------------------------


def target_of(alert: Alert) -> Key | None:
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


def firing_alert(alerts: Sequence[Alert], groups: Sequence[Sequence[AlertMatcher]], since: float | None) -> str | None:
    """The matching rule (pure; the state machine applies it): the description of the first firing alert
    that passes the release's matchers and was recorded during this release (an older record, e.g. one
    written back by `kubectl rollout undo`, is about an earlier release)."""
    for alert in alerts:
        if alert.status != "firing" or (since is not None and alert.received_at < since):
            continue
        if selected_by(alert, groups):
            return alert.describe()
    return None


# --- record -------------------------------------------------------------------------------------------


def encode(alerts: Sequence[Alert]) -> str:
    return json.dumps([{"labels": dict(a.labels), "annotations": dict(a.annotations), "at": a.received_at}
                       for a in alerts], sort_keys=True, separators=(",", ":"))


def decode(text: str | None) -> tuple[Alert, ...]:
    """Recorded alerts from a `weir.dev/alerts` value; anything unreadable counts as none."""
    if not text:
        return ()
    try:
        items = json.loads(text)
        return tuple(Alert("firing", {str(k): str(v) for k, v in item["labels"].items()},
                           {str(k): str(v) for k, v in (item.get("annotations") or {}).items()},
                           float(item.get("at") or 0.0)) for item in items)
    except (ValueError, TypeError, KeyError, AttributeError):
        return ()


def merged(recorded: Sequence[Alert], new: Sequence[Alert]) -> tuple[Alert, ...]:
    """`recorded` plus the alerts of `new` not recorded yet (same labels: the same alert, resent)."""
    seen = {a.fingerprint() for a in recorded}
    out = list(recorded)
    for alert in new:
        if alert.fingerprint() not in seen:
            seen.add(alert.fingerprint())
            out.append(alert)
    return tuple(out[:KEPT_PER_DEPLOYMENT])


class AlertWriter(Protocol):
    def record_alerts(self, namespace: str, name: str, change: Callable[[str | None], str | None]) -> None:
        """Rewrite annotation weir.dev/alerts of the Deployment with `change(current value)`, retrying on
        conflicts; raises if the write cannot be made."""


@dataclass
class AlertIntake:
    """The webhook's side: keep the alerts worth recording, persist them, then wake their releases."""

    lookup: Callable[[Key], Mapping[str, Any] | None]  # the Deployment as last seen, or None
    # The `rollback-on-alerts` matchers of a release an alert could roll back there; None: no such release.
    rules_for: Callable[[Mapping[str, Any]], Sequence[Sequence[AlertMatcher]] | None]
    writer: AlertWriter
    wake: Callable[[Key], None]
    clock: Callable[[], float] = time.time

    def take(self, alerts: Sequence[Alert]) -> tuple[list[str], list[str]]:
        """Record firing alerts about releases in progress. Returns (recorded: "ns/name" of releases an
        alert was recorded for, failed: "ns/name: why" for records that could not be written). A target
        that cannot be recorded never stops the others."""
        now = self.clock()
        by_target: dict[Key, list[Alert]] = {}
        for alert in alerts:
            target = target_of(alert)
            if alert.status != "firing" or target is None:
                continue
            deployment = self.lookup(target)
            rules = None if deployment is None else self.rules_for(deployment)
            if rules is None or not selected_by(alert, rules):
                continue  # the machine applies the same rule again when it acts (the config may change)
            labels = {k: v[:MAX_LABEL_CHARS] for k, v in alert.labels.items()}
            annotations = {k: v[:MAX_LABEL_CHARS] for k, v in alert.annotations.items() if k in ("summary",
                                                                                            "description")}
            by_target.setdefault(target, []).append(Alert("firing", labels, annotations, now))
        recorded: list[str] = []
        failed: list[str] = []
        for (namespace, name), new in by_target.items():
            try:
                self.writer.record_alerts(namespace, name, _adding(new))
            except Exception as exc:  # one broken target must not lose the others
                log.warning("could not record alert", extra={"namespace": namespace, "deployment": name,
                                                            "error": str(exc)[:300]})
                failed.append(f"{namespace}/{name}: {str(exc)[:200]}")
                continue
            self.wake((namespace, name))
            recorded.append(f"{namespace}/{name}")
        return recorded, failed


def _adding(new: Sequence[Alert]) -> Callable[[str | None], str | None]:
    def change(text: str | None) -> str | None:
        return encode(merged(decode(text), new))

    return change

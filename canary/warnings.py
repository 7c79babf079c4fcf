"""What makes a release unsafe, read off a Deployment: Weir warns (Events, `kubectl weir lint`) but
does not refuse, because each has legitimate uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def release_warnings(deployment: Mapping[str, Any]) -> list[str]:
    spec = deployment.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    found: list[str] = []
    for container in pod.get("containers") or []:
        name = container.get("name", "?")
        image = str(container.get("image", ""))
        if not container.get("readinessProbe"):
            found.append(f"container {name} has no readinessProbe: Weir cannot tell when the canary can take "
                         "traffic, so it routes as soon as the pod runs")
        last = image.rsplit("/", 1)[-1]
        if "@" not in last and (":" not in last or last.endswith(":latest")):
            found.append(f"container {name} uses image {image!r} (latest): a restart may change the version "
                         "under a running release; pin a tag or digest")
        if not (container.get("lifecycle") or {}).get("preStop"):
            found.append(f"container {name} has no preStop hook: pods may be killed before endpoints stop "
                         "sending them requests; add e.g. a 5 s sleep")
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    if str(rolling.get("maxSurge", "25%")) in ("0", "0%") and str(rolling.get("maxUnavailable", "25%")) in ("0", "0%"):
        found.append("strategy.rollingUpdate has maxSurge = maxUnavailable = 0: the rollout can never make "
                     "progress; set one of them above zero")
    return found

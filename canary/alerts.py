"""Firing alerts waiting to roll back a release: written by the webhook, read by the reconciler."""

from __future__ import annotations

import threading


class AlertBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._firing: dict[tuple[str, str], str] = {}

    def record(self, namespace: str, name: str, description: str) -> None:
        with self._lock:
            self._firing.setdefault((namespace, name), description)

    def get(self, namespace: str, name: str) -> str | None:
        with self._lock:
            return self._firing.get((namespace, name))

    def clear(self, namespace: str, name: str) -> None:
        with self._lock:
            self._firing.pop((namespace, name), None)

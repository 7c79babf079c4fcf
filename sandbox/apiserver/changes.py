"""Changes as watchers see them: events in resourceVersion order, filtered by namespace and selectors."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .selectors import FieldSelector, LabelSelector

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class WatchEvent:
    """One change, in global resourceVersion order; `old` lets selector watches turn MODIFIED into ADDED/DELETED."""

    resource_version: int
    type: str  # ADDED | MODIFIED | DELETED
    store_key: tuple[str, str]
    namespace: str
    object: JsonObject
    old: JsonObject | None = None


@dataclass(eq=False)  # identity: each live watch is its own subscriber
class Watcher:
    """A live watch: filters the store's events and queues what this client asked for."""

    store_key: tuple[str, str]
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    queue: asyncio.Queue[WatchEvent] = field(default_factory=asyncio.Queue)

    def _matches(self, obj: JsonObject | None) -> bool:
        if obj is None:
            return False
        return self.labels.matches(obj["metadata"].get("labels")) and self.fields.matches(obj)

    def translate(self, event: WatchEvent) -> WatchEvent | None:
        """What this watch sees of `event`: objects entering or leaving the selection appear as ADDED/DELETED."""
        if event.store_key != self.store_key:
            return None
        if self.namespace is not None and event.namespace != self.namespace:
            return None
        now_in = self._matches(event.object)
        if event.type != "MODIFIED":
            return event if now_in else None
        was_in = self._matches(event.old)
        if now_in and was_in:
            return event
        if now_in:
            return WatchEvent(event.resource_version, "ADDED", event.store_key, event.namespace, event.object)
        if was_in:
            return WatchEvent(event.resource_version, "DELETED", event.store_key, event.namespace, event.object)
        return None

    def offer(self, event: WatchEvent) -> None:
        seen = self.translate(event)
        if seen is not None:
            self.queue.put_nowait(seen)

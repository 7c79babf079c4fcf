"""Kubernetes Events sent in the background, as client-go's event broadcaster does: recording what a
reconcile did must not make the reconcile wait for the API server (Events were a third of the requests
of a release). Each Event carries the time it was recorded; if the API server is unreachable for long,
the oldest pending Events are dropped and counted, never the work."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("weir.events")

MAX_PENDING = 10_000


class EventSender:
    def __init__(self, send: Callable[[str, dict[str, Any]], None], threads: int = 2) -> None:
        self._send = send
        self._cond = threading.Condition()
        self._pending: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self._closed = False
        self._busy = 0  # Events being sent right now
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._threads = [threading.Thread(target=self._run, name=f"events-{i}", daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, namespace: str, body: dict[str, Any]) -> None:
        with self._cond:
            if len(self._pending) >= MAX_PENDING:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append((namespace, body))
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + self._busy

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every submitted Event was sent (or given up on); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and self._busy == 0, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return
                namespace, body = self._pending.popleft()
                self._busy += 1
            try:
                self._send(namespace, body)
                self.sent += 1
            except Exception as exc:  # an Event is a record, not the work: never retried forever
                self.failed += 1
                if self.failed == 1 or self.failed % 100 == 0:
                    log.warning("could not record an Event", extra={"error": str(exc)[:200], "failed": self.failed})
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

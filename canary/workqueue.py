"""A work queue of Deployments to reconcile, in the manner of client-go's: a key is queued at most once,
a key being worked on is never handed to a second worker, and a key added meanwhile runs again after.
Urgent keys (a firing alert) jump the line."""

from __future__ import annotations

import collections
import threading

Key = tuple[str, str]  # (namespace, deployment name)


class WorkQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._queue: collections.deque[Key] = collections.deque()
        self._queued: set[Key] = set()
        self._processing: set[Key] = set()
        self._dirty: dict[Key, bool] = {}  # re-added while processing -> urgent?
        self._closed = False

    def add(self, key: Key, urgent: bool = False) -> None:
        with self._cond:
            if self._closed:
                return
            if key in self._processing:
                self._dirty[key] = self._dirty.get(key, False) or urgent
                return
            if key in self._queued:
                if urgent:
                    self._queue.remove(key)
                    self._queue.appendleft(key)
                return
            self._queued.add(key)
            if urgent:
                self._queue.appendleft(key)
            else:
                self._queue.append(key)
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Key | None:
        """The next key (now being processed), or None if closed or timed out."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._queue or self._closed, timeout):
                return None
            if self._closed and not self._queue:
                return None
            key = self._queue.popleft()
            self._queued.discard(key)
            self._processing.add(key)
            return key

    def done(self, key: Key) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self.add(key, self._dirty.pop(key))  # the condition's lock is re-entrant

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

"""A work queue of Deployments to reconcile, in the manner of client-go's: a key is queued at most once,
a key being worked on is never handed to a second worker, and a key added meanwhile runs again after.

Two lanes: safety work (a firing alert, a rollback, a deadline that is due, traffic going back to the
primary) is handed out before any routine step, however long the routine lane is; each lane is FIFO.
"""

from __future__ import annotations

import collections
import threading

Key = tuple[str, str]  # (namespace, deployment name)


class WorkQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._urgent: collections.deque[Key] = collections.deque()
        self._routine: collections.deque[Key] = collections.deque()
        self._queued: dict[Key, bool] = {}  # queued key -> in the urgent lane?
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
                if urgent and not self._queued[key]:
                    self._routine.remove(key)  # promoted to the safety lane
                    self._urgent.append(key)
                    self._queued[key] = True
                return
            self._queued[key] = urgent
            (self._urgent if urgent else self._routine).append(key)
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Key | None:
        """The next key (now being processed), or None if closed or timed out."""
        taken = self.take(timeout)
        return None if taken is None else taken[0]

    def take(self, timeout: float | None = None) -> tuple[Key, bool] | None:
        """The next key (now being processed) and whether it came from the safety lane."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._urgent or self._routine or self._closed, timeout):
                return None
            if not (self._urgent or self._routine):
                return None
            urgent = bool(self._urgent)
            key = (self._urgent or self._routine).popleft()
            del self._queued[key]
            self._processing.add(key)
            return key, urgent

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
            return len(self._urgent) + len(self._routine)

    def depths(self) -> tuple[int, int]:
        """(safety lane, routine lane)."""
        with self._cond:
            return len(self._urgent), len(self._routine)

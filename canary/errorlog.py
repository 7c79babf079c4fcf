"""Errors that repeat are logged once, then counted: a reconcile retried every second for minutes must
not write a traceback each time (a 100 KB traceback per retry once filled 5.7 MB in two minutes)."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Hashable

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from adapters.base import RouterError

# Failures that are expected on a real cluster and retried: a message is enough, no traceback.
EXPECTED = (ApiException, RouterError, HTTPError, OSError, TimeoutError)
MAX_TRACEBACK_CHARS = 4000
REPORT_EVERY = 100  # a still-failing key is reported again after this many more failures


class RepeatedErrors:
    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._failing: dict[Hashable, tuple[str, int]] = {}  # key -> (error text, failures so far)

    def failed(self, key: Hashable, error: BaseException) -> None:
        text = f"{type(error).__name__}: {str(error)[:500]}"
        with self._lock:
            last, count = self._failing.get(key, ("", 0))
            count = count + 1 if last == text else 1
            self._failing[key] = (text, count)
        if count == 1:
            extra = {"key": str(key), "error": text}
            if not isinstance(error, EXPECTED):
                # An unexpected error gets one short traceback: enough to find it, not enough to flood.
                extra["traceback"] = "".join(traceback.format_exception(error))[-MAX_TRACEBACK_CHARS:]
            self._log.warning("reconcile failed; retrying", extra=extra)
        elif count % REPORT_EVERY == 0:
            self._log.warning("reconcile still failing", extra={"key": str(key), "error": text, "failures": count})

    def succeeded(self, key: Hashable) -> None:
        with self._lock:
            last = self._failing.pop(key, None)
        if last is not None and last[1] > 1:
            self._log.info("reconcile recovered", extra={"key": str(key), "after_failures": last[1],
                                                          "error": last[0]})

    def count(self, key: Hashable) -> int:
        with self._lock:
            return self._failing.get(key, ("", 0))[1]

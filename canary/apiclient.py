"""The controller's API client: client-go's manners on the official Python client.

- A token bucket (QPS and burst, like client-go's) in front of every request, so a thousand releases
  never flood the API server: work waits its turn instead.
- A failed request (5xx, 429, a dropped connection, a timeout) is retried inside the same call, after a
  short jittered backoff: every request Weir makes is safe to repeat (reads; writes conditional on a
  resourceVersion, which answer 409 if the first attempt landed; idempotent merge patches; creates and
  deletes whose 409/404 the callers expect). Watches are not retried here: their informer resumes them.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import urllib3
from kubernetes.client import ApiClient, Configuration, rest

USER_AGENT = "weir-controller/0.1"
_LANE = threading.local()


@contextlib.contextmanager
def safety_work() -> Iterator[None]:
    """Requests made inside are safety work (a rollback, an alert, a deadline): they take their token at
    once, in debt if need be, which routine requests then pay back by waiting."""
    _LANE.safety = True
    try:
        yield
    finally:
        _LANE.safety = False


RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_SECONDS = (0.05, 0.2, 0.5)  # before the 2nd, 3rd and 4th attempt (then the error stands)


class TokenBucket:
    def __init__(self, qps: float, burst: int, clock: Any = time.monotonic) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._clock = clock
        self._tokens = float(self.burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, urgent: bool = False) -> float:
        """Wait for a token (urgent: take it now, in debt if need be); returns how long it waited."""
        wait = self.reserve(urgent)
        if wait > 0:
            time.sleep(wait)
        return wait

    def reserve(self, urgent: bool = False) -> float:
        """Take a token; how long the caller must wait before using it."""
        if self.qps <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.qps)
            self._at = now
            self._tokens -= 1
            return -self._tokens / self.qps if self._tokens < 0 and not urgent else 0.0


class ControllerApiClient(ApiClient):
    def __init__(self, configuration: Configuration | None = None, qps: float = 50.0, burst: int = 100) -> None:
        super().__init__(configuration)
        self.user_agent = USER_AGENT  # so an API server's audit (and the sandbox's counter) can tell us apart
        self.bucket = TokenBucket(qps, burst)
        self.retries = 0  # requests repeated after a failure (for /metrics)
        self.throttled_seconds = 0.0

    def call_api(self, method: str, url: str, header_params: Any = None, body: Any = None,
                 post_params: Any = None, _request_timeout: Any = None) -> rest.RESTResponse:
        streaming = "watch=true" in url
        self.throttled_seconds += self.bucket.take(urgent=getattr(_LANE, "safety", False))
        attempts = 1 if streaming else 1 + len(BACKOFF_SECONDS)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = super().call_api(method, url, header_params, body, post_params, _request_timeout)
            except (urllib3.exceptions.HTTPError, OSError):
                if last:
                    raise
            else:
                if last or response.status not in RETRIED_STATUSES:
                    return response
                response.read()  # release the connection before asking again
            self.retries += 1
            time.sleep(BACKOFF_SECONDS[attempt] * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")

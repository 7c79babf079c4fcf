"""The sandbox's demo app: an HTTP service whose errors and latency come from its environment, so a
new env value or image tag is a new version the controller can judge.

Run it with `python -m sandbox.demoapp` (settings: `DemoAppSettings`). It answers:
- any path but the three below: JSON `{"version", "pod", "ok"}`, 500 for a share ERROR_RATE of
  requests, after a lognormal delay around LATENCY_MS (`?delay_ms=N` forces the delay);
- `/metrics`: `http_requests_total{code,method}`, `http_request_duration_seconds` (histogram),
  `demoapp_requests_in_flight`, `demoapp_degraded`, `demoapp_info{version}`;
- `/healthz` (alive), `/readyz` (ready: READY_AFTER_SECONDS passed, no FAIL_READINESS, not stopping).
SIGTERM: not ready, listener closed, in-flight requests drained for up to SHUTDOWN_GRACE_SECONDS.
"""

from sandbox.demoapp.metrics import LATENCY_BUCKETS_SECONDS, RequestMetrics
from sandbox.demoapp.server import DemoApp, make_app, serve
from sandbox.demoapp.settings import DemoAppSettings

__all__ = ["LATENCY_BUCKETS_SECONDS", "DemoApp", "DemoAppSettings", "RequestMetrics", "make_app", "serve"]

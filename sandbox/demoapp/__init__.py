"""The sandbox's demo app: an HTTP service whose errors and latency come from its environment, so a
new env value or image tag is a new version the controller can judge.

Run it with `python -m sandbox.demoapp` (settings: see `DemoAppSettings.from_env`).
"""

from sandbox.demoapp.metrics import LATENCY_BUCKETS_SECONDS, RequestMetrics
from sandbox.demoapp.server import DemoApp, make_app, serve
from sandbox.demoapp.settings import DemoAppSettings

__all__ = ["LATENCY_BUCKETS_SECONDS", "DemoApp", "DemoAppSettings", "RequestMetrics", "make_app", "serve"]

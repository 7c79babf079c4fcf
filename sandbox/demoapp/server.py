"""The demo app's HTTP server and its graceful shutdown."""

from __future__ import annotations

import asyncio
import math
import random
import signal
import socket
import time
from dataclasses import dataclass, field

from aiohttp import web

from sandbox.demoapp.metrics import Gauge, RequestMetrics
from sandbox.demoapp.settings import DemoAppSettings

_MAX_LATENCY_SECONDS = 30.0


@dataclass
class DemoApp:
    """One running instance: its settings, what it served, and whether it is shutting down."""

    settings: DemoAppSettings
    metrics: RequestMetrics = field(default_factory=RequestMetrics)
    started_at: float = field(default_factory=time.monotonic)
    shutting_down: bool = False
    in_flight: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def is_ready(self) -> bool:
        if self.shutting_down or self.settings.fail_readiness:
            return False
        return time.monotonic() - self.started_at >= self.settings.ready_after_seconds

    def sample_latency_seconds(self) -> float:
        median = self.settings.latency_ms / 1000.0
        if median <= 0:
            return 0.0
        sigma = self.settings.latency_jitter
        return min(median * math.exp(sigma * self.rng.gauss(0.0, 1.0)), _MAX_LATENCY_SECONDS)


_APP_KEY = web.AppKey("demoapp", DemoApp)


def make_app(demo: DemoApp) -> web.Application:
    app = web.Application()
    app[_APP_KEY] = demo
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    # Every other path is "the application", so Ingress rules with any path reach it.
    app.router.add_route("*", "/{tail:.*}", _serve)
    return app


async def _serve(request: web.Request) -> web.Response:
    demo = request.app[_APP_KEY]
    started = time.perf_counter()
    delay = _requested_delay(request)
    demo.in_flight += 1
    try:
        await asyncio.sleep(demo.sample_latency_seconds() if delay is None else delay)
    finally:
        demo.in_flight -= 1
    failed = demo.rng.random() < demo.settings.error_rate
    status = 500 if failed else 200
    body = {"version": demo.settings.version, "pod": demo.settings.pod_name, "ok": not failed}
    demo.metrics.observe(request.method, status, time.perf_counter() - started)
    return web.json_response(body, status=status)


def _requested_delay(request: web.Request) -> float | None:
    """`?delay_ms=N` overrides the sampled latency: tests use it to hold a request in flight."""
    raw = request.query.get("delay_ms")
    if raw is None:
        return None
    try:
        return min(max(float(raw), 0.0) / 1000.0, _MAX_LATENCY_SECONDS)
    except ValueError:
        raise web.HTTPBadRequest(text=f"delay_ms={raw!r} is not a number of milliseconds") from None


async def _metrics(request: web.Request) -> web.Response:
    demo = request.app[_APP_KEY]
    gauges = (
        Gauge("demoapp_info", "The running version.", 1.0, (("version", demo.settings.version),)),
        Gauge("demoapp_degraded", "1 when started with DEGRADED=true.", float(demo.settings.degraded)),
        Gauge("demoapp_requests_in_flight", "Application requests being answered now.", float(demo.in_flight)),
    )
    text = demo.metrics.exposition(gauges)
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    if request.app[_APP_KEY].is_ready():
        return web.Response(text="ready\n")
    return web.Response(status=503, text="not ready\n")


async def serve(settings: DemoAppSettings, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or `stop`), then shut down gracefully: report not ready, close the
    listening socket, let in-flight requests finish within shutdown_grace_seconds, return."""
    stop = stop or asyncio.Event()
    demo = DemoApp(settings)
    runner = web.AppRunner(make_app(demo), access_log=None, shutdown_timeout=settings.shutdown_grace_seconds)
    await runner.setup()
    site: web.BaseSite
    if settings.listen_fd is not None:
        sock = socket.socket(fileno=settings.listen_fd)
        site = web.SockSite(runner, sock)
    else:
        sock = socket.create_server((settings.host, settings.port))
        site = web.SockSite(runner, sock)
    await site.start()
    host, port = sock.getsockname()[:2]
    print(f"demoapp {settings.version} ({settings.pod_name}) listening on http://{host}:{port}", flush=True)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        demo.shutting_down = True
        await runner.cleanup()

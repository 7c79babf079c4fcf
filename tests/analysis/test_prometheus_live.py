"""End to end with a live scrape: pods on loopback, real Prometheus scraping them every second.

The primary's target carries a `deployment` label; the canary's only a `pod` label, so its arm
comes from the pod name, as with a plain kubernetes_sd config.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from analysis.history import History
from analysis.prometheus import PrometheusSource
from analysis.queries import ReleaseWindow
from sandbox.prometheus_server import PrometheusServer, wait_until

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs the prometheus binary")]

# requests per second by status code; counters are exact functions of time, so any scrape
# timing yields the same per-interval counts.
RATES = {"primary": {"200": 40.0}, "canary": {"200": 8.0, "500": 2.0}}
STEP = 2


def exposition(rates: dict[str, float], elapsed: float) -> str:
    lines = ["# TYPE http_requests_total counter"]
    lines += [f'http_requests_total{{code="{code}",method="GET"}} {rate * elapsed}' for code, rate in rates.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
async def pods() -> AsyncIterator[int]:
    born = time.time()

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=exposition(RATES[request.match_info["arm"]], time.time() - born))

    app = web.Application()
    app.router.add_get("/{arm}/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = runner.addresses[0][1]
    try:
        yield port
    finally:
        await runner.cleanup()


def both_arms_flowing(history: History) -> History | None:
    flowing = [i for i in history.intervals if i.baseline.requests > 0 and i.canary.requests > 0]
    return history if len(flowing) >= 2 else None


async def test_live_scrape_gives_each_arm_its_counts(pods: int) -> None:
    server = PrometheusServer()
    server.write_targets("pods", [
        {"targets": [f"127.0.0.1:{pods}"], "labels": {"__metrics_path__": "/primary/metrics", "namespace": "live",
                                                       "deployment": "web-primary",
                                                       "pod": "web-primary-6f7d8c9b5-k2x9q"}},
        {"targets": [f"127.0.0.1:{pods}"], "labels": {"__metrics_path__": "/canary/metrics", "namespace": "live",
                                                       "pod": "web-58c9d7f6b-q8w2r"}},
    ])
    server.scrape_configs = [server.file_sd_job("pods", "pods", scrape_interval="1s")]
    release = ReleaseWindow("live", "web", "web-primary", "web", started_at=time.time())
    source = PrometheusSource("http://127.0.0.1:1", "app")
    try:
        await asyncio.to_thread(server.start)
        source = PrometheusSource(server.url, "app")

        def poll() -> History | None:
            return both_arms_flowing(source.histories([release], now=time.time(), step_seconds=STEP)[release.key])

        history = await asyncio.to_thread(wait_until, poll, 30.0, "both arms to show traffic")
    finally:
        await asyncio.to_thread(server.stop)
    assert history.error is None
    for interval in (i for i in history.intervals if i.baseline.requests > 0 and i.canary.requests > 0):
        assert interval.baseline.requests == pytest.approx(40 * STEP, rel=0.1)
        assert interval.baseline.errors == 0
        assert interval.canary.requests == pytest.approx(10 * STEP, rel=0.1)
        assert interval.canary.errors == pytest.approx(2 * STEP, rel=0.1)
        assert interval.weight == pytest.approx(20, abs=2)

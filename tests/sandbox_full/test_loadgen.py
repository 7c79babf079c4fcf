"""The load generator: steady schedule, counting, failures, headers and cookies, CLI."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from sandbox.loadgen import UNKNOWN_VERSION, LoadGenerator, LoadSpec, main, send
from tests.sandbox_full.conftest import DemoProcess, wait_for


class Echo:
    """Answers with a version taken from the request and remembers the headers it saw."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        if request.query.get("plain"):
            return web.Response(text="not json")
        return web.json_response({"version": request.headers.get("x-version", "none")},
                                 status=int(request.query.get("status", "200")))


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    server = Echo()
    app = web.Application()
    app.router.add_get("/", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    yield server
    await runner.cleanup()


async def test_counts_by_version_and_status(echo: Echo) -> None:
    ok = await send(echo.url, 10, rate=500, headers={"x-version": "v2"})
    broken = await send(echo.url + "?status=503", 4, rate=500, headers={"x-version": "v2"})
    plain = await send(echo.url + "?plain=1", 3, rate=500)
    assert (ok.by_version, ok.by_code, ok.failed) == ({"v2": 10}, {200: 10}, 0)
    assert (broken.by_code, broken.failed, broken.failed_by_version("v2")) == ({503: 4}, 4, 4)
    assert plain.by_version == {UNKNOWN_VERSION: 3}


async def test_headers_and_cookies_reach_the_server(echo: Echo) -> None:
    await send(echo.url, 2, rate=500, headers={"x-canary": "always"}, cookies={"user": "always", "region": "eu"})
    assert all(h["x-canary"] == "always" for h in echo.headers)
    assert all(h["Cookie"] == "user=always; region=eu" for h in echo.headers)


async def test_refused_connections_count_as_failures() -> None:
    with socket.socket() as reserved:  # bound, never listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        report = await send(f"http://127.0.0.1:{reserved.getsockname()[1]}/", 5, rate=500)
    assert (report.sent, report.answered, report.connection_errors, report.failed) == (5, 0, 5, 5)
    assert "Connect" in report.last_error


async def test_stop_ends_an_unbounded_run_after_answers_arrive(echo: Echo) -> None:
    load = LoadGenerator(LoadSpec(echo.url, rate=200))
    running = asyncio.create_task(load.run())

    async def some_answered() -> bool:
        return load.snapshot().answered >= 10

    await wait_for(some_answered, 10, "10 answers")
    load.stop()
    report = await asyncio.wait_for(running, 10)
    assert report.sent == report.answered and report.failed == 0


async def test_duration_bounds_how_many_requests_leave(echo: Echo) -> None:
    report = await asyncio.wait_for(LoadGenerator(LoadSpec(echo.url, rate=40, duration=0.5)).run(), 10)
    # request i leaves at i/rate, and none leaves once the duration is over
    assert 1 <= report.sent <= 40 * 0.5 + 1
    assert report.answered == report.sent


@pytest.mark.parametrize("spec", [
    {"rate": 0}, {"rate": 10, "duration": -1}, {"rate": 10, "total": -3},
])
def test_spec_rejects_impossible_values(spec: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LoadSpec("http://127.0.0.1:1/", **spec)  # type: ignore[arg-type]


def test_cli_prints_a_json_summary(demo_apps: Callable[..., DemoProcess], capsys: pytest.CaptureFixture[str]) -> None:
    app = demo_apps("v9")
    code = main([app.url + "/", "--rate", "200", "--total", "20", "-H", "x-any: 1", "--cookie", "user=always"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["by_version"] == {"v9": 20} and summary["failed"] == 0


async def test_latency_quantiles_cover_answered_requests_only(echo: Echo) -> None:
    report = await send(echo.url, 20, rate=500)
    assert len(report.latencies_seconds) == 20
    p50, p99 = report.latency_quantile(0.5), report.latency_quantile(0.99)
    assert p50 is not None and p99 is not None and 0 < p50 <= p99 == max(report.latencies_seconds)
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        refused = await send(f"http://127.0.0.1:{reserved.getsockname()[1]}/", 2, rate=500)
    assert refused.latency_quantile(0.5) is None

"""The demo app as a real process: what it serves, what it counts, how it becomes ready and stops."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from collections.abc import Callable

import aiohttp
import pytest

from sandbox.demoapp import DemoAppSettings
from sandbox.loadgen import send
from tests.sandbox_full.conftest import ROOT, DemoProcess, wait_for

_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            match = _SAMPLE.match(line)
            assert match, f"not exposition format: {line!r}"
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
            samples[(match["name"], labels)] = float(match["value"])
    return samples


def total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def scrape(app: DemoProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, text = await get(app.url + "/metrics")
    assert status == 200
    return parse_metrics(text)


@pytest.mark.parametrize(("name", "value"), [
    ("ERROR_RATE", "1.5"), ("LATENCY_MS", "fast"), ("FAIL_READINESS", "maybe"), ("PORT", "-1"),
])
def test_malformed_setting_names_the_variable_and_an_example(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}=.*; set"):
        DemoAppSettings.from_env({name: value})


async def test_answers_with_its_version_and_pod_name(demo_apps: Callable[..., DemoProcess]) -> None:
    app = demo_apps("v7", "web-5d8f-abcde")
    await wait_for(lambda: _answers(app), 10, "the demo app to answer")
    status, body = await get(app.url + "/any/path")
    assert status == 200
    assert '"version": "v7"' in body and '"pod": "web-5d8f-abcde"' in body


async def test_metrics_count_exactly_what_it_served(demo_apps: Callable[..., DemoProcess]) -> None:
    app = demo_apps("v2", ERROR_RATE="0.3")
    await wait_for(lambda: _answers(app), 10, "the demo app to answer")
    report = await send(app.url + "/", 300, rate=1000)
    samples = await scrape(app)
    assert report.answered == 300
    assert 0 < report.by_code[500] < 300
    for code in (200, 500):
        assert total(samples, "http_requests_total", code=str(code), method="GET") == report.by_code[code]
        assert total(samples, "http_request_duration_seconds_count", code=str(code)) == report.by_code[code]
        assert total(samples, "http_request_duration_seconds_bucket", code=str(code), le="+Inf") == \
            report.by_code[code]
    # probes and scrapes are not application traffic
    assert total(samples, "http_requests_total") == 300


async def test_latency_setting_shows_in_the_histogram(demo_apps: Callable[..., DemoProcess]) -> None:
    app = demo_apps("slow", LATENCY_MS="30")
    await wait_for(lambda: _answers(app), 10, "the demo app to answer")
    await send(app.url + "/", 40, rate=400)
    samples = await scrape(app)
    assert total(samples, "http_request_duration_seconds_bucket", code="200", le="+Inf") == 40
    assert total(samples, "http_request_duration_seconds_bucket", code="200", le="0.025") == 0


async def test_not_ready_until_ready_after_seconds(demo_apps: Callable[..., DemoProcess]) -> None:
    app = demo_apps(READY_AFTER_SECONDS="3")
    first = await wait_for(lambda: _status(app, "/readyz"), 10, "the demo app to answer")
    assert first == 503
    await wait_for(lambda: _is(app, "/readyz", 200), 10, "readiness after 3 s")


async def test_fail_readiness_keeps_it_unready_but_alive(demo_apps: Callable[..., DemoProcess]) -> None:
    app = demo_apps(FAIL_READINESS="true")
    await wait_for(lambda: _is(app, "/healthz", 200), 10, "the demo app to answer")
    assert await _status(app, "/readyz") == 503


async def test_sigterm_stops_accepting_and_drains_the_request_in_flight(
    demo_apps: Callable[..., DemoProcess],
) -> None:
    app = demo_apps(SHUTDOWN_GRACE_SECONDS="20")
    await wait_for(lambda: _answers(app), 10, "the demo app to answer")
    slow = asyncio.create_task(get(app.url + "/?delay_ms=2000"))
    await wait_for(lambda: _in_flight(app, 1), 10, "the slow request to be in flight")
    app.process.send_signal(signal.SIGTERM)
    await wait_for(lambda: _refused(app), 10, "the listener to close")
    assert not slow.done()  # closed for new connections while the old one is still being answered
    status, body = await slow
    assert status == 200 and '"ok": true' in body
    assert await asyncio.to_thread(app.process.wait, 10) == 0


async def test_drain_gives_up_after_the_grace_period(demo_apps: Callable[..., DemoProcess]) -> None:
    app = demo_apps(SHUTDOWN_GRACE_SECONDS="0.5")
    await wait_for(lambda: _answers(app), 10, "the demo app to answer")
    stuck = asyncio.create_task(get(app.url + "/?delay_ms=25000"))
    await wait_for(lambda: _in_flight(app, 1), 10, "the stuck request to be in flight")
    app.process.send_signal(signal.SIGTERM)
    # exits on its own long before the 25 s request could finish
    assert await asyncio.to_thread(app.process.wait, 10) == 0
    with pytest.raises(aiohttp.ClientError):
        await stuck


async def _status(app: DemoProcess, path: str) -> int | None:
    try:
        return (await get(app.url + path))[0]
    except aiohttp.ClientError:
        return None


async def _is(app: DemoProcess, path: str, status: int) -> bool:
    return await _status(app, path) == status


async def _answers(app: DemoProcess) -> bool:
    return await _is(app, "/healthz", 200)


async def _in_flight(app: DemoProcess, count: int) -> bool:
    return total(await scrape(app), "demoapp_requests_in_flight") == count


async def _refused(app: DemoProcess) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", app.port)
    except OSError:
        return True
    writer.close()
    return False


def test_exits_with_a_clear_message_on_bad_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.demoapp"], env={"ERROR_RATE": "lots", "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 2
    assert "ERROR_RATE='lots'" in result.stderr

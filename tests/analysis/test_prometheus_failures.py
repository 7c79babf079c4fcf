"""A metrics source that cannot answer is nodata with the reason, never an exception, never a pass."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from analysis.judges import JUDGES, make_judge
from analysis.model import Outcome
from analysis.prometheus import PrometheusSource
from analysis.queries import ReleaseWindow
from sandbox.prometheus_server import free_port

NOW = 1_800_000_000.0
WINDOWS = [ReleaseWindow("shop", "web", "web-primary", "web", started_at=NOW - 600),
           ReleaseWindow("blog", "web", "web-primary", "web", started_at=NOW - 60)]


def assert_all_nodata(source: PrometheusSource, *reason: str) -> None:
    results = source.histories(WINDOWS, now=NOW, step_seconds=10)
    assert set(results) == {w.key for w in WINDOWS}
    for history in results.values():
        assert history.nodata and not history.intervals
        for words in reason:
            assert history.error is not None and words in history.error, history.error


def test_unreachable_prometheus_is_nodata() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert_all_nodata(PrometheusSource(url), "cannot reach Prometheus", url, "refused")


@pytest.mark.parametrize("judge", JUDGES)
def test_every_judge_reads_a_failed_source_as_nodata_with_the_reason(judge: str) -> None:
    history = PrometheusSource(f"http://127.0.0.1:{free_port()}").histories(WINDOWS, now=NOW)[("shop", "web")]
    verdict = history.verdict(make_judge(judge))
    assert verdict.outcome is Outcome.NODATA
    assert "cannot reach Prometheus" in verdict.reason


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections (the kernel completes the handshake) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_a_prometheus_that_does_not_answer_in_time_is_nodata(silent_server: str) -> None:
    assert_all_nodata(PrometheusSource(silent_server, timeout_seconds=0.3), "did not answer within 0.3 s")


class _Canned(BaseHTTPRequestHandler):
    status = 503
    body = b"overloaded"

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_args: object) -> None:
        pass


def canned(status: int, body: bytes) -> Iterator[str]:
    handler = type("Handler", (_Canned,), {"status": status, "body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def overloaded() -> Iterator[str]:
    yield from canned(503, b'{"status":"error","errorType":"timeout",'
                           b'"error":"query timed out in expression evaluation"}')


@pytest.fixture
def garbled() -> Iterator[str]:
    yield from canned(200, b"<html>not prometheus</html>")


def test_a_query_error_is_nodata_with_prometheus_reason(overloaded: str) -> None:
    assert_all_nodata(PrometheusSource(overloaded), "rejected the query", "HTTP 503 timeout",
                      "query timed out in expression evaluation")


def test_an_answer_that_is_not_prometheus_is_nodata(garbled: str) -> None:
    assert_all_nodata(PrometheusSource(garbled), "unreadable answer")


async def test_the_async_entry_point_reports_failures_the_same_way() -> None:
    source = PrometheusSource(f"http://127.0.0.1:{free_port()}")
    results = await source.histories_async(WINDOWS, now=NOW, step_seconds=10)
    assert all(h.nodata and "cannot reach" in (h.error or "") for h in results.values())


def test_before_any_full_interval_there_is_nothing_to_ask() -> None:
    fresh = ReleaseWindow("shop", "web", "web-primary", "web", started_at=NOW - 5)
    results = PrometheusSource(f"http://127.0.0.1:{free_port()}").histories([fresh], now=NOW, step_seconds=10)
    assert results[fresh.key].intervals == [] and not results[fresh.key].nodata


@pytest.mark.parametrize("step", [0.5, 2.5, 0])
def test_step_must_be_whole_seconds(step: float) -> None:
    with pytest.raises(ValueError, match="step_seconds"):
        PrometheusSource("http://127.0.0.1:1").histories(WINDOWS, now=NOW, step_seconds=step)


def test_unknown_preset_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="preset: unknown 'linkerd'; use one of app, nginx, istio, envoy"):
        PrometheusSource("http://127.0.0.1:1", "linkerd")

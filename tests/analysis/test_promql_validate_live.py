"""Guard-rail PromQL judged by a real Prometheus, and the offline check held against it.

`promql_parse_error` asks `/api/v1/query` (at unix time 0, where no data is): 400 `bad_data` is
an invalid query (parse errors and type errors alike), any 200 a valid one; a server that cannot
be asked raises PrometheusUnavailable, which is not "invalid".
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from analysis.prometheus import PrometheusUnavailable, promql_parse_error
from analysis.promql_syntax import syntax_error
from analysis.queries import TemplateError, render_placeholder
from sandbox.prometheus_server import PrometheusServer, free_port

needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs the prometheus binary")


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with PrometheusServer() as server:
        yield server.url


@pytest.mark.parametrize(("query", "error"), [
    ("sum(rate(x[1m]))", None),
    ("vector(1)", None),
    ('sum(increase(http_requests_total{code=~"5..", deployment="web"}[1m]))', None),
    ("sum(rate(", "parse error"),
    ("up{", "parse error"),
    ("rate(x[5m]", "parse error"),
    ('"unterminated', "unterminated quoted string"),
    ("rate(up)", "range vector"),  # parses, but can never evaluate: invalid too
    ("sum(nosuchfunction(up))", "unknown function"),
])
@pytest.mark.real
@needs_prometheus
def test_prometheus_says_whether_a_query_parses(prometheus_url: str, query: str, error: str | None) -> None:
    found = promql_parse_error(prometheus_url, query)
    if error is None:
        assert found is None
    else:
        assert found is not None and error in found, found


@pytest.mark.real
@needs_prometheus
def test_a_template_rendered_on_placeholders_is_judged_as_the_controller_would_send_it(prometheus_url: str) -> None:
    with pytest.raises(TemplateError):
        render_placeholder("sum(x{a={{pod}}})")
    template = 'sum(increase(x{namespace="{{namespace}}", deployment="{{arm}}"}[{{interval}}]))'
    assert promql_parse_error(prometheus_url, render_placeholder(template)) is None
    assert promql_parse_error(prometheus_url, render_placeholder("sum(x{deployment={{arm}}})")) is None
    found = promql_parse_error(prometheus_url, render_placeholder('rate(x{deployment="{{arm}}"})'))
    assert found is not None and "range vector" in found


# Queries the offline check judges; it may refuse only what Prometheus refuses too (comments aside,
# which Prometheus accepts but Weir's batching cannot carry).
OFFLINE_CASES = [
    "sum(rate(x[1m]))", "sum(rate(", "up{", "up}", "rate(x[5m]", "sum(x]", ")", '"unterminated',
    "'single", "`raw", 'x{a="b\\.c"}', 'x{a="b\\\\.c"}', "x{a='\\\"'}", "x{a=\"\\'\"}", 'x{a="\\u00e9"}',
    'x{a="\\ud800"}', 'x{a="\\x4"}', 'x{a="\\101"}', 'x{a="\\q"}', "x{a=`\\q`}", 'x{a="(["}',
    'x{a="b\nc"}', "x{a=`b\nc`}", "sum(x) by (a)", "x[5m:1m]", "",
]


@pytest.mark.parametrize("query", OFFLINE_CASES)
@pytest.mark.real
@needs_prometheus
def test_the_offline_check_refuses_only_what_prometheus_refuses(prometheus_url: str, query: str) -> None:
    offline = syntax_error(query)
    live = promql_parse_error(prometheus_url, query)
    if offline is not None:
        assert live is not None, f"offline check refused a query Prometheus accepts: {offline}"
    if live is not None and ("quoted string" in live or "escape" in live or "unclosed" in live):
        assert offline is not None, f"Prometheus refused ({live}) what the offline check let through"


def test_an_unreachable_prometheus_is_not_an_invalid_query() -> None:
    with pytest.raises(PrometheusUnavailable, match="cannot reach"):
        promql_parse_error(f"http://127.0.0.1:{free_port()}", "up", timeout=2.0)


class _Answer(BaseHTTPRequestHandler):
    status = 503

    def do_POST(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status":"error","errorType":"unavailable","error":"overloaded"}')

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return


@pytest.mark.parametrize("status", [503, 500, 404, 401])
def test_a_server_error_or_a_wrong_url_is_not_an_invalid_query(status: int) -> None:
    handler = type("Answer", (_Answer,), {"status": status})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(PrometheusUnavailable, match=f"HTTP {status}"):
            promql_parse_error(f"http://127.0.0.1:{server.server_port}/", "up", timeout=5.0)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

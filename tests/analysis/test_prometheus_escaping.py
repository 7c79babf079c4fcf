"""Values spliced into PromQL cannot change the query: checked by Prometheus' own parser.

Each template below selects a series that exists (deployment="web-primary"). Rendered with the
real name it finds it; rendered with a hostile value, Prometheus must still accept the query and
find nothing, i.e. the value stayed a literal inside the selector it was meant for.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from analysis.prometheus import PrometheusSource, QueryFailed
from analysis.queries import (
    PRESETS,
    ReleaseWindow,
    TemplateError,
    batched_custom_query,
    promql_any_of,
    promql_string,
    render,
)
from sandbox.prometheus_server import PrometheusServer, Series

NOW = time.time()

TEMPLATES = {
    "double quotes": 'sum(http_requests_total{namespace="shop", deployment="{{arm}}"})',
    "single quotes": "sum(http_requests_total{namespace='shop', deployment='{{arm}}'})",
    "raw string": "sum(http_requests_total{namespace=`shop`, deployment=`{{arm}}`})",
    "regex matcher": 'sum(http_requests_total{namespace="shop", deployment=~"{{arm}}"})',
    "regex, raw": "sum(http_requests_total{namespace=`shop`, deployment=~`{{arm}}`})",
    "bare": "sum(http_requests_total{namespace='shop', deployment={{arm}}})",
    "after a comment": '# a "note\' with `quotes\nsum(http_requests_total{namespace="shop", deployment="{{arm}}"})',
}

HOSTILE = [
    'web-primary"} or vector(1) or x{a="',
    "web-primary'} or vector(1) or x{a='",
    'web-primary"}) or vector(1) #',
    "web-primary\\",
    '\\"} or vector(1) or x{a=\\"',
    "web-primary\n",
    "web-primary\n} or vector(1)",
    ".*",
    "web-.*",
    "web-primary|web",
    "(web-primary)",
    "{{arm}}",
    "}",
    "{",
    "web-primary\x00",
    "wéb-primary ✓",
    "",
]


@pytest.fixture(scope="module")
def prom() -> Iterator[PrometheusServer]:
    if shutil.which("prometheus") is None:
        pytest.skip("needs the prometheus binary")
    with PrometheusServer() as server:
        server.push([Series("http_requests_total", {"namespace": "shop", "deployment": "web-primary"},
                            [(NOW - 30, 1.0), (NOW - 1, 2.0)])])
        yield server


def run(prom: PrometheusServer, query: str) -> list[Mapping[str, Any]]:
    return PrometheusSource(prom.url).instant(query, at=NOW)


@pytest.mark.real
@pytest.mark.parametrize("template", TEMPLATES.values(), ids=TEMPLATES.keys())
def test_the_real_name_finds_the_series(prom: PrometheusServer, template: str) -> None:
    assert len(run(prom, render(template, {"arm": "web-primary"}))) == 1


@pytest.mark.real
@pytest.mark.parametrize("template", TEMPLATES.values(), ids=TEMPLATES.keys())
@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_parses_and_matches_nothing(prom: PrometheusServer, template: str, value: str) -> None:
    assert run(prom, render(template, {"arm": value})) == []


@pytest.mark.real
def test_batched_copies_stay_apart_even_with_hostile_values(prom: PrometheusServer) -> None:
    template = TEMPLATES["double quotes"]
    query = batched_custom_query(template, [("0", {"arm": "web-primary"}), ("1", {"arm": HOSTILE[0]}),
                                            ('2"} or vector(1)', {"arm": "web-primary"})])
    result = run(prom, query)
    assert sorted(r["metric"]["weir_batch_key"] for r in result) == ['0', '2"} or vector(1)']


@pytest.mark.real
def test_preset_namespace_regex_is_literal(prom: PrometheusServer) -> None:
    assert run(prom, PRESETS["app"].requests_query(["sh.p", "x|shop", ".*"], "1m")) == []
    assert len(run(prom, PRESETS["app"].requests_query(["shop"], "1m"))) == 1


@pytest.mark.real
def test_a_query_prometheus_rejects_raises_query_failed_with_its_reason(prom: PrometheusServer) -> None:
    with pytest.raises(QueryFailed, match="bad_data"):
        run(prom, "sum(")


def test_a_raw_string_cannot_hold_a_backtick() -> None:
    with pytest.raises(TemplateError, match="backtick"):
        render(TEMPLATES["raw string"], {"arm": "web`} or vector(1) or x{a=`"})


def test_unknown_template_variables_are_named() -> None:
    with pytest.raises(TemplateError, match=r"\{\{deploy\}\}.*\{\{arm\}\}"):
        render('x{d="{{deploy}}"}', {"arm": "web"})


def test_interval_must_be_a_duration_where_it_is_bare() -> None:
    assert render("rate(x[{{interval}}])", {"interval": "1m30s"}) == "rate(x[1m30s])"
    with pytest.raises(TemplateError, match="interval"):
        render("rate(x[{{interval}}])", {"interval": "1m]) or vector(1) or rate(x[1m"})


def test_values_render_once_so_placeholders_inside_values_stay_text() -> None:
    assert render('x{a="{{arm}}", b="{{canary}}"}', {"arm": "{{canary}}", "canary": "c"}) == 'x{a="{{canary}}", b="c"}'


def test_string_literal_escapes_quotes_backslashes_and_control_characters() -> None:
    assert promql_string('a"b\\c\nd\x01é') == '"a\\"b\\\\c\\nd\\x01\\u00e9"'
    assert promql_any_of(["a.b", "c|d"]) == '"a\\\\.b|c\\\\|d"'


@pytest.mark.parametrize(("field", "value"), [
    ("namespace", 'shop"} or vector(1)'),
    ("namespace", "Shop"),
    ("namespace", "a" * 64),
    ("name", "web{x}"),
    ("primary", "web\\primary"),
    ("canary", "web canary"),
    ("ingress", "web'"),
])
def test_release_names_must_be_kubernetes_names(field: str, value: str) -> None:
    names = {"namespace": "shop", "name": "web", "primary": "web-primary", "canary": "web", "ingress": "web"}
    with pytest.raises(ValueError, match=f"^{field}: .*DNS-1123"):
        ReleaseWindow(**{**names, field: value}, started_at=0.0)

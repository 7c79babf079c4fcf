"""The Prometheus process helper the tests, the sandbox and the demo share."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from collections.abc import Iterator

import pytest

from sandbox.prometheus_server import PrometheusError, PrometheusServer, Series, openmetrics_text

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs the prometheus binary")]


@pytest.fixture
def prom() -> Iterator[PrometheusServer]:
    with PrometheusServer() as server:
        yield server


def test_remote_write_is_queryable_at_once_with_awkward_label_values(prom: PrometheusServer) -> None:
    now = time.time()
    labels = {"job": "t", "quote": 'a"b', "slash": "c\\d", "brace": "}{", "accent": "é"}
    prom.push([Series("pushed_total", labels, [(now - 10, 1.0), (now - 1, 5.5)])])
    [sample] = prom.query("pushed_total", at=now)
    assert sample["metric"] == {"__name__": "pushed_total", **labels}
    assert float(sample["value"][1]) == 5.5


def test_remote_write_of_old_samples_is_refused_with_prometheus_reason(prom: PrometheusServer) -> None:
    now = time.time()
    prom.push([Series("recent_total", {"job": "t"}, [(now, 1.0)])])
    week_ago = now - 7 * 86400
    with pytest.raises(PrometheusError, match=r"remote write \(HTTP 400\).*out of bounds"):
        prom.push([Series("old_total", {"job": "t"}, [(week_ago, 1.0)])])


def test_preloaded_history_is_there_on_start() -> None:
    day_ago = int(time.time()) - 86400
    server = PrometheusServer()
    server.preload([Series("history_total", {"pod": "p"}, [(day_ago + s, float(s)) for s in range(0, 600, 15)])])
    with server:
        [sample] = server.query("history_total", at=day_ago + 300)
        assert float(sample["value"][1]) == 300.0
        with pytest.raises(PrometheusError, match="preload before start"):
            server.preload([])


def test_reload_applies_new_rule_files(prom: PrometheusServer) -> None:
    rules = "groups:\n- name: weir\n  rules:\n  - record: weir:one\n    expr: vector(1)\n"
    prom.reload(rule_files={"weir.yml": rules})
    with urllib.request.urlopen(f"{prom.url}/api/v1/rules") as answer:
        groups = json.load(answer)["data"]["groups"]
    assert [r["name"] for g in groups for r in g["rules"]] == ["weir:one"]


def test_a_config_prometheus_rejects_fails_the_reload(prom: PrometheusServer) -> None:
    with pytest.raises(PrometheusError, match="reload"):
        prom.reload(rule_files={"bad.yml": "groups:\n- name: x\n  rules:\n  - record: r\n    expr: sum(\n"})


def test_stop_ends_the_process_and_removes_its_directory() -> None:
    server = PrometheusServer().start()
    pid, workdir = server.pid, server.workdir
    assert pid is not None and workdir.exists()
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not workdir.exists()


def test_openmetrics_text_groups_families_and_escapes_labels() -> None:
    text = openmetrics_text([Series("b_total", {"x": 'q"\\'}, [(1.0, 2.0)]), Series("a_total", {}, [(1.5, 1.0)])])
    assert text == 'a_total 1.0 1.500\nb_total{x="q\\"\\\\"} 2.0 1.000\n# EOF\n'

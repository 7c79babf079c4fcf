"""`weir analyze backtest` over history in a real Prometheus: the timeline and the decision."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from analysis.backtest import add_arguments, parse_duration, parse_time, run
from analysis.cli import register
from sandbox.prometheus_server import PrometheusServer, Series, free_port

T0 = (int(time.time()) - 7200) // 60 * 60
MINUTES = 15


def counter(name: str, labels: dict[str, str], rate: float) -> Series:
    return Series(name, labels, [(float(t), rate * (t - T0 + 60)) for t in range(T0 - 60, T0 + MINUTES * 60 + 1, 5)])


def release(namespace: str, canary_error_share: float) -> list[Series]:
    """100 requests/s, 10% to the canary; the primary fails 0.5% of requests, the canary as given.
    Latency is the same in both arms."""
    out: list[Series] = []
    for deployment, pod, total, share in (("web-primary", "web-primary-6f7d8c9b5-k2x9q", 90.0, 0.005),
                                          ("web", "web-58c9d7f6b-q8w2r", 10.0, canary_error_share)):
        labels = {"namespace": namespace, "deployment": deployment, "pod": pod}
        out.append(counter("http_requests_total", {**labels, "code": "200"}, total * (1 - share)))
        out.append(counter("http_requests_total", {**labels, "code": "500"}, total * share))
        for le, part in (("0.05", 0.5), ("0.1", 0.9), ("+Inf", 1.0)):
            out.append(counter("http_request_duration_seconds_bucket", {**labels, "le": le}, total * part))
    return out


@pytest.fixture(scope="module")
def prom() -> Iterator[PrometheusServer]:
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        pytest.skip("needs the prometheus and promtool binaries")
    server = PrometheusServer()
    server.preload(release("broken", 0.10) + release("healthy", 0.005))
    with server:
        yield server


def backtest(*argv: str) -> tuple[int, list[dict[str, Any]], str]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    code = run(parser.parse_args(list(argv)), out=out, err=err)
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def over(prom_url: str, namespace: str, *extra: str) -> tuple[int, list[dict[str, Any]], str]:
    return backtest("--prometheus", prom_url, "--namespace", namespace, "--name", "web",
                    "--start", str(T0), "--end", str(T0 + MINUTES * 60), *extra)


@pytest.mark.real
def test_a_broken_canary_is_rolled_back_at_the_first_failing_look(prom: PrometheusServer) -> None:
    code, lines, _ = over(prom.url, "broken")
    *looks, decision = lines
    assert code == 0
    assert len(looks) == MINUTES * 6
    assert looks[0]["baseline"] == {"requests": pytest.approx(900), "errors": pytest.approx(4.5)}
    assert looks[0]["canary"] == {"requests": pytest.approx(100), "errors": pytest.approx(10)}
    assert looks[0]["weight"] == pytest.approx(10)
    first_fail = next(look["t"] for look in looks if look["outcome"] == "fail")
    assert decision["decision"] == "rollback" and decision["at"] == first_fail
    assert decision["metrics"]["error-rate"]["outcome"] == "fail"


@pytest.mark.real
def test_weir_analyze_backtest_runs_it(prom: PrometheusServer, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="weir")
    register(parser.add_subparsers())
    args = parser.parse_args(["analyze", "backtest", "--prometheus", prom.url, "--namespace", "broken", "--name", "web",
                              "--start", str(T0), "--end", str(T0 + 60), "--judge", "threshold"])
    assert args.handler(args) == 0
    *looks, decision = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(looks) == 6 and set(decision) == {"decision", "at", "metrics"}


@pytest.mark.real
@pytest.mark.parametrize("judge", ["sequential", "mannwhitney", "threshold"])
def test_a_healthy_canary_is_never_rolled_back(prom: PrometheusServer, judge: str) -> None:
    code, lines, _ = over(prom.url, "healthy", "--judge", judge)
    assert code == 0
    assert all(look["outcome"] != "fail" for look in lines[:-1])
    assert lines[-1]["decision"] in ("promote", "continue")


@pytest.mark.real
def test_a_range_with_no_series_says_so(prom: PrometheusServer) -> None:
    code, lines, err = over(prom.url, "nowhere")
    assert code == 1 and lines == []
    assert "no data" in err and "namespace nowhere" in err


def test_an_unreachable_prometheus_is_reported_not_judged() -> None:
    code, lines, err = over(f"http://127.0.0.1:{free_port()}", "broken")
    assert code == 1 and lines == []
    assert "cannot reach Prometheus" in err


@pytest.mark.parametrize(("argv", "words"), [
    (("--step", "2.5s"), "step_seconds"),
    (("--alpha", "2"), "alpha"),
    (("--metrics", "errors"), "metrics"),
    (("--end", "2026-11-20T14:00:00"), "time zone"),
])
def test_bad_arguments_name_what_to_fix(argv: tuple[str, ...], words: str) -> None:
    base = ["--prometheus", "http://127.0.0.1:1", "--namespace", "shop", "--name", "web",
            "--start", "2026-11-20T13:00:00Z", "--end", "2026-11-20T13:30:00Z"]
    code, lines, err = backtest(*base, *argv)
    assert code == 2 and lines == [] and words in err


def test_times_and_durations_in_the_forms_people_type() -> None:
    assert parse_time("2026-11-20T14:00:00Z", 0) == parse_time("2026-11-20T15:00:00+01:00", 0) == 1_795_183_200
    assert parse_time("now-1h30m", 10_000) == 10_000 - 5400
    assert parse_time("1795183200", 0) == 1_795_183_200
    assert parse_duration("10s") == 10 and parse_duration("1m30s") == 90 and parse_duration("15") == 15
    with pytest.raises(ValueError, match="duration"):
        parse_duration("10 sec")

"""`weir analyze replay` (DESIGN §5): one JSON line per file, in order; malformed input is located."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from analysis.cli import register
from analysis.simulate import Scenario, Streams, simulate

HEADER = "t,weight,baseline_requests,baseline_errors,canary_requests,canary_errors"


def weir_analyze(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="weir")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["analyze", *argv])
    code: int = args.handler(args)
    return code


def write_streams(path: Path, streams: Streams, release: int = 0, looks: int | None = None) -> Path:
    bounds = ["+Inf" if math.isinf(b) else f"{b:g}" for b in streams.scenario.buckets]
    columns = [HEADER, *(f"baseline_le_{b}" for b in bounds), *(f"canary_le_{b}" for b in bounds)]
    lines = [",".join(columns)]
    for i in range(looks or streams.t.size):
        row = [streams.t[i], streams.weight[i], streams.baseline_requests[release, i],
               streams.baseline_errors[release, i], streams.canary_requests[release, i],
               streams.canary_errors[release, i], *streams.baseline_buckets[release, i],
               *streams.canary_buckets[release, i]]
        lines.append(",".join(f"{v:g}" for v in row))
    path.write_text("\n".join(lines) + "\n")
    return path


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_one_json_line_per_file_in_the_order_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_streams(tmp_path / "bad.csv", simulate(Scenario("10x", canary_error_factor=10.0), 1, seed=1))
    good = write_streams(tmp_path / "good.csv", simulate(Scenario("null"), 1, seed=2))
    short = write_streams(tmp_path / "short.csv", simulate(Scenario("null"), 1, seed=3), looks=2)
    assert weir_analyze("replay", str(bad), str(good), str(short)) == 0
    out = lines(capsys.readouterr().out)
    assert [o["decision"] for o in out] == ["rollback", "promote", "continue"]
    assert all(set(o) == {"decision", "at", "metrics"} for o in out)
    assert isinstance(out[0]["at"], float) and out[0]["at"] <= 60.0
    assert out[2]["at"] is None
    metrics = out[0]["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["error-rate"]["outcome"] == "fail"
    assert "e_value_worse" in metrics["error-rate"]


def test_judge_and_alpha_options_are_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_streams(tmp_path / "a.csv", simulate(Scenario("4x", canary_error_factor=4.0), 1, seed=4))
    assert weir_analyze("replay", str(path), "--judge", "threshold") == 0
    threshold = lines(capsys.readouterr().out)[0]
    assert threshold["decision"] == "rollback" and threshold["at"] == 300.0  # five one-minute checks
    assert weir_analyze("replay", str(path), "--alpha", "0.2") == 0
    loose = lines(capsys.readouterr().out)[0]
    assert weir_analyze("replay", str(path), "--alpha", "0.0001") == 0
    strict = lines(capsys.readouterr().out)[0]
    assert isinstance(loose["at"], float) and isinstance(strict["at"], float)
    assert loose["at"] <= strict["at"]


def test_latency_columns_are_optional(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "errors-only.csv"
    path.write_text(HEADER + "\n" + "\n".join(f"{10 * i},10,900,4,100,20" for i in range(1, 10)) + "\n")
    assert weir_analyze("replay", str(path), "--metrics", "error-rate") == 0
    assert lines(capsys.readouterr().out)[0]["decision"] == "rollback"


@pytest.mark.parametrize(("content", "where"), [
    (HEADER + "\n10,10,900,4,100,x\n", ":2:6 (canary_errors): 'x' is not a number"),
    (HEADER + "\n10,10,900,4,100\n", ":2:6 (canary_errors): expected 6 fields, found 5"),
    (HEADER + "\n20,10,900,4,100,1\n10,10,900,4,100,1\n", ":3:1 (t): t must increase"),
    (HEADER + "\n10,120,900,4,100,1\n", ":2:2 (weight): weight is a percentage"),
    (HEADER + "\n10,10,900,4,100,200\n", ":2:6 (canary_errors): more errors"),
    (HEADER + "\n10,10,900,-4,100,1\n", ":2:4 (baseline_errors): '-4' must be a finite number >= 0"),
    (HEADER + ",colour\n10,10,900,4,100,1,red\n", ":1:7 (colour): unknown column"),
    ("t,weight,baseline_requests\n1,2,3\n", ":1: missing column 'baseline_errors'"),
    (HEADER + ",baseline_le_0.1,baseline_le_+Inf,canary_le_0.1\n", ":1:9 (canary_le_0.1): canary buckets must end"),
    (HEADER + ",baseline_le_0.1,baseline_le_+Inf,canary_le_0.1,canary_le_+Inf\n10,10,900,4,100,1,500,400,50,100\n",
     ":2:8 (baseline_le_+Inf): bucket counts are cumulative"),
    ("", ":1: empty file"),
])
def test_malformed_csv_names_file_line_and_column_and_prints_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, where: str) -> None:
    good = write_streams(tmp_path / "good.csv", simulate(Scenario("null"), 1, seed=5), looks=3)
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    assert weir_analyze("replay", str(good), str(bad)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{bad}{where}" in captured.err


def test_every_bad_file_is_reported_and_a_missing_one_is_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = tmp_path / "first.csv"
    first.write_text(HEADER + "\n10,10,900,4,100,x\n")
    missing = tmp_path / "missing.csv"
    assert weir_analyze("replay", str(first), str(missing)) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{first}:2:6")
    assert err[1].startswith(f"{missing}: cannot read")


def test_bad_judge_option_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_streams(tmp_path / "a.csv", simulate(Scenario("null"), 1, seed=6), looks=2)
    assert weir_analyze("replay", str(path), "--alpha", "2") == 2
    assert "alpha" in capsys.readouterr().err


def test_a_row_with_blank_buckets_has_no_latency_for_that_interval(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = HEADER + ",baseline_le_0.1,baseline_le_+Inf,canary_le_0.1,canary_le_+Inf"
    rows = ["10,10,900,4,100,0,,,,", "20,10,900,4,100,0,450,900,50,100"]
    path = tmp_path / "gaps.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    assert weir_analyze("replay", str(path)) == 0
    latency = lines(capsys.readouterr().out)[0]["metrics"]["latency"]  # type: ignore[index]
    assert latency["canary_requests"] == 100.0

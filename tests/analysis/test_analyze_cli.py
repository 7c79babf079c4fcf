"""The `analyze` command wires replay and backtest without making replay depend on backtest."""

from __future__ import annotations

import argparse
import sys

import pytest

from analysis.cli import register


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="weir")
    register(root.add_subparsers(dest="command", required=True))
    return root


def test_replay_and_backtest_are_sub_commands_of_analyze() -> None:
    args = parser().parse_args(["analyze", "replay", "a.csv", "b.csv", "--judge", "mannwhitney", "--alpha", "0.05"])
    assert args.files == ["a.csv", "b.csv"] and args.judge == "mannwhitney" and args.alpha == 0.05
    assert callable(args.handler)
    with pytest.raises(SystemExit):
        parser().parse_args(["analyze", "replay", "a.csv", "--judge", "bayes"])


def test_replay_still_works_when_backtest_cannot_be_imported(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "analysis.backtest", None)  # makes the import raise ImportError
    args = parser().parse_args(["analyze", "backtest"])
    assert args.handler(args) == 2
    assert "backtest is not available" in capsys.readouterr().err
    replay = parser().parse_args(["analyze", "replay", "x.csv"])
    assert replay.handler is not None

"""`weir analyze replay|backtest`: the analysis engine from the command line.

`backtest` lives in `analysis.backtest` (it needs Prometheus); it is imported only when asked for,
so `replay` keeps working wherever that module or its dependencies are missing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from analysis.judges import JUDGES, make_judge
from analysis.judges.base import BUILTIN_METRICS


def register(subparsers: Any) -> None:
    """Add the `analyze` command (with `replay` and `backtest`) to `weir`'s sub-commands."""
    analyze = subparsers.add_parser("analyze", help="judge recorded or past metrics offline",
                                    description="Run Weir's judges on recorded counts or on Prometheus history.")
    commands = analyze.add_subparsers(dest="analyze_command", required=True, metavar="COMMAND")

    replay = commands.add_parser("replay", help="judge per-interval counts from CSV files",
                                 description="Print one JSON decision per CSV file, in order (DESIGN §5).")
    replay.add_argument("files", nargs="+", metavar="FILE.csv")
    replay.add_argument("--alpha", type=float, default=0.01, help="false-rollback budget per release (default 0.01)")
    replay.add_argument("--judge", default="sequential", choices=JUDGES, help="default: sequential")
    replay.add_argument("--metrics", default=",".join(BUILTIN_METRICS),
                        help=f"comma-separated metrics to judge (default {','.join(BUILTIN_METRICS)})")
    replay.set_defaults(handler=run_replay)

    backtest = commands.add_parser("backtest", help="judge a past time range from Prometheus",
                                   description="Run a judge over a past release using Prometheus range queries.")
    try:
        backtest_module = importlib.import_module("analysis.backtest")
    except ImportError as error:
        reason = f"backtest is not available here: {error}"
        backtest.set_defaults(handler=lambda _args: _unavailable(reason))
        return
    backtest_module.add_arguments(backtest)
    backtest.set_defaults(handler=lambda args: backtest_module.run(args))


def _unavailable(reason: str) -> int:
    print(f"weir analyze backtest: {reason}", file=sys.stderr)
    return 2


def run_replay(args: argparse.Namespace) -> int:
    """Exit 0 with one line per file; 2 (and nothing on stdout) if any file or option is bad."""
    from analysis.replay import MalformedCsv, decide, read_csv

    try:
        judge = make_judge(args.judge, alpha=args.alpha, metrics=[m.strip() for m in args.metrics.split(",")])
    except ValueError as error:
        print(f"weir analyze replay: {error}", file=sys.stderr)
        return 2
    histories = []
    problems = []
    for path in args.files:
        try:
            histories.append(read_csv(path))
        except MalformedCsv as error:
            problems.append(str(error))
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2
    for history in histories:
        print(json.dumps(decide(judge, history), allow_nan=False), flush=True)
    return 0

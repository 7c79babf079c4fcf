"""`weir analyze backtest`: what Weir would have decided on a past release, from Prometheus history.

    weir analyze backtest --prometheus http://prometheus:9090 --namespace shop --name web \\
        --start 2026-11-20T14:00:00Z --end 2026-11-20T14:30:00Z --step 10s --judge sequential

The range is read with the same batched range queries the controller uses (one per kind of data),
the release's canary assumed to start at `--start`. One JSON object per look is printed (the
interval's counts and the judge's outcome after it), then the decision line in replay's shape:
`{"decision": "rollback"|"promote"|"continue", "at": <t of the deciding look or null>, "metrics": {...}}`.
The first look that fails rolls back and the first that passes promotes (replay's `decide`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from analysis.judges import JUDGES, Judge, make_judge
from analysis.judges.base import BUILTIN_METRICS
from analysis.model import Interval
from analysis.prometheus import PrometheusSource
from analysis.queries import PRESETS, ReleaseWindow
from analysis.replay import decide

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """`10s`, `1m30s`, `2h`, or plain seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pieces = _DURATION.findall(text)
    if not pieces or "".join(n + u for n, u in pieces) != text:
        raise ValueError(f"{text!r} is not a duration; write e.g. 10s, 1m or 1h30m")
    return sum(float(number) * _UNITS[unit] for number, unit in pieces)


def parse_time(text: str, now: float) -> float:
    """Unix seconds, an ISO 8601 time (`2026-11-20T14:00:00Z`), `now`, or `now-30m`."""
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("now-"):
        return now - parse_duration(text[4:])
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time; write unix seconds, 2026-11-20T14:00:00Z, now or now-30m") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add Z or an offset such as +01:00")
    return moment.timestamp()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    parser.add_argument("--namespace", required=True, help="the release's namespace")
    parser.add_argument("--name", required=True, help="the Deployment under release (the canary)")
    parser.add_argument("--primary", help="the baseline Deployment (default: NAME-primary)")
    parser.add_argument("--canary", help="the canary Deployment (default: NAME)")
    parser.add_argument("--ingress", help="nginx preset: the user's Ingress (default: NAME)")
    parser.add_argument("--start", required=True, metavar="T",
                        help="when the canary started: unix seconds, ISO 8601 with zone, or now-30m")
    parser.add_argument("--end", required=True, metavar="T", help="end of the range (same formats, or now)")
    parser.add_argument("--step", default="10s", help="analysis interval (default 10s, whole seconds)")
    parser.add_argument("--judge", default="sequential", choices=JUDGES, help="default: sequential")
    parser.add_argument("--alpha", type=float, default=0.01, help="false-rollback budget (default 0.01)")
    parser.add_argument("--metrics", default=",".join(BUILTIN_METRICS),
                        help=f"comma-separated, default {','.join(BUILTIN_METRICS)}")
    parser.add_argument("--preset", default="app", choices=sorted(PRESETS), help="where the metrics live")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per Prometheus query (default 10)")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Fetch, judge, print; 0 on a decision or a continue, 1 when there is nothing to judge, 2 on bad input."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        now = time.time()
        start, end = parse_time(args.start, now), parse_time(args.end, now)
        step = parse_duration(args.step)
        if end <= start:
            raise ValueError(f"--end must be after --start ({args.end} <= {args.start})")
        window = ReleaseWindow(namespace=args.namespace, name=args.name, primary=args.primary or f"{args.name}-primary",
                               canary=args.canary or args.name, started_at=start, ingress=args.ingress or "")
        judge = make_judge(args.judge, alpha=args.alpha, metrics=[m.strip() for m in args.metrics.split(",")])
        source = PrometheusSource(args.prometheus, args.preset, timeout_seconds=args.timeout)
        history = source.histories([window], now=end, step_seconds=step)[window.key]
    except ValueError as error:
        print(f"backtest: {error}", file=err)
        return 2
    if history.error is not None:
        print(f"backtest: no data: {history.error}", file=err)
        return 1
    if not history.intervals:
        print(f"backtest: no full {args.step} interval between --start and --end", file=err)
        return 1
    for line in timeline(judge, history.intervals):
        print(json.dumps(line), file=out)
    print(json.dumps(decide(judge, history.intervals)), file=out)
    return 0


def timeline(judge: Judge, intervals: Sequence[Interval]) -> list[dict[str, Any]]:
    """Each look's counts and the judge's combined outcome after it."""
    return [
        {"t": i.t, "weight": round(i.weight, 3),
         "baseline": {"requests": i.baseline.requests, "errors": i.baseline.errors},
         "canary": {"requests": i.canary.requests, "errors": i.canary.errors},
         "outcome": outcome.value}
        for i, outcome in zip(intervals, judge.outcomes(intervals), strict=True)
    ]

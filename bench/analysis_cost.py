"""What one look of the analysis costs, by the release's age: a full re-evaluation against a judgement
that keeps its running statistics (issue 9).

    python bench/analysis_cost.py [--judge sequential|mannwhitney|threshold|all] [--looks 15] [--seed 1]

For histories of 1, 10, 30 and 120 minutes at 2 s and 30 s intervals (100 req/s in all, canary at 10%,
latency in Prometheus' default buckets; `analysis.simulate`), it times the look that brings the newest
interval, in one process:
- full: `judge.evaluate(history)`, what the controller did at every look before;
- incremental: `judgement.evaluate(history)` on a judgement that has seen the history up to the look
  before, with the history as the Prometheus source hands it over: settled intervals are the objects
  of the previous look, the last 60 s are fresh copies (re-read; usually unchanged), one interval is
  new. Every third look the newest interval before it is revised too (a late scrape landing).
Each figure is the median over `--looks` consecutive looks (milliseconds per look per release).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Sequence

from analysis.judges import JUDGES, make_judge
from analysis.model import ArmCounts, Interval
from analysis.simulate import Scenario, simulate

MINUTES = (1, 10, 30, 120)
INTERVALS_S = (2.0, 30.0)
RE_READ_S = 60.0  # PrometheusSource.settle_seconds: how much of the recent past each tick reads again


def delivered(history: Sequence[Interval], look: int, revise: bool) -> list[Interval]:
    """history[:look] as the source delivers it at that look."""
    horizon = history[look - 1].t - RE_READ_S
    out = [i if i.t <= horizon else dataclasses.replace(i) for i in history[:look]]
    if revise and look >= 2:
        # The previous look had read the interval before this one short; here it arrives complete.
        out[-2] = dataclasses.replace(out[-2])
    return out


def short(interval: Interval) -> Interval:
    def arm(counts: ArmCounts) -> ArmCounts:
        return ArmCounts(counts.requests * 0.9, counts.errors * 0.9, tuple((b, c * 0.9) for b, c in counts.buckets))
    return dataclasses.replace(interval, baseline=arm(interval.baseline), canary=arm(interval.canary))


def median_ms(samples: list[float]) -> float:
    return 1000.0 * statistics.median(samples)


def measure(judge_name: str, minutes: int, interval_s: float, looks: int, seed: int) -> tuple[int, float, float]:
    scenario = Scenario("null", duration_s=60.0 * minutes, look_s=interval_s)
    history = simulate(scenario, 1, seed=seed).history(0)
    size = len(history)
    looks = min(looks, size)
    judge = make_judge(judge_name)
    first = size - looks + 1
    judgement = judge.follow()
    if first > 1:
        judgement.evaluate(delivered(history, first - 1, revise=False))
    incremental: list[float] = []
    full: list[float] = []
    for look in range(first, size + 1):
        revise = look % 3 == 0
        if revise and look >= 2:
            # What the previous look saw: this look's predecessor read short.
            judgement.evaluate([*delivered(history, look - 1, revise=False)[:-1], short(history[look - 2])])
        seen = delivered(history, look, revise)
        started = time.perf_counter()
        judgement.evaluate(seen)
        incremental.append(time.perf_counter() - started)
        started = time.perf_counter()
        judge.evaluate(seen)
        full.append(time.perf_counter() - started)
    return size, median_ms(full), median_ms(incremental)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", choices=(*JUDGES, "all"), default="sequential")
    parser.add_argument("--looks", type=int, default=15, help="looks timed per history (median)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    names = JUDGES if args.judge == "all" else (args.judge,)
    print("analysis cost per look and release (ms, median); full = evaluate(history), "
          "incremental = judgement.evaluate(history)")
    print(f"{'judge':<12} {'interval':>8} {'history':>8} {'intervals':>9} {'full':>10} {'incremental':>12} "
          f"{'full/incr':>10}")
    for name in names:
        for interval_s in INTERVALS_S:
            for minutes in MINUTES:
                size, full, incremental = measure(name, minutes, interval_s, args.looks, args.seed)
                print(f"{name:<12} {interval_s:>7g}s {minutes:>6d}mn {size:>9d} {full:>10.3f} {incremental:>12.3f} "
                      f"{full / incremental:>9.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

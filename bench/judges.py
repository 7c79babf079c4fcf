"""Benchmark the judges on the same simulated request streams (issue 3's scenarios and targets).

    python bench/judges.py [--releases 1000] [--baseline-releases 200] [--alpha 0.01] [--seed 1] [--only NAME ...]

Every scenario is one 30-minute release: 100 req/s in all, canary weight 10%, baseline 0.5% errors,
lognormal latency (median 100 ms, sigma 0.5) in Prometheus' default buckets, a look every 10 s.
For each scenario the same streams go to every judge, each looking after every interval as the
controller would. The default judge sees all of them (1000 by default, so that a 1% false-rollback
rate and the medians are measured to within a few tenths of a percent and about a look); the
baselines, slower to run, see the first `--baseline-releases`. Printed per scenario and judge: the
rollback rate (false rollbacks when the canary is as good as the baseline, power otherwise), median
and p90 time to detect (a release never rolled back counts as never: ">1800"), and Wald's SPRT
expected time as the floor: the sequential probability ratio test that knows both the baseline and
the exact effect, on the canary's own counts (E[N] ~ log(1/alpha) / KL per look, Wald's
approximation without overshoot, rounded up to a whole look since nobody can decide between looks).
Then which of the issue's targets the default judge meets.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.judges import JUDGES, SequentialJudge, make_judge
from analysis.judges.base import BUILTIN_METRICS, ERROR_RATE
from analysis.model import Outcome
from analysis.simulate import Incident, Scenario, Streams, bucket_probabilities, simulate

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("null"),
    Scenario("errors 2x (1%)", canary_error_factor=2.0),
    Scenario("errors 4x (2%)", canary_error_factor=4.0),
    Scenario("errors 10x (5%)", canary_error_factor=10.0),
    Scenario("latency p50 +10%", canary_latency_factor=1.10),
    Scenario("latency p50 +25%", canary_latency_factor=1.25),
    Scenario("null: both arms degrade (min 10-14: 5% errors, 3x latency)",
             incident=Incident(start_s=600.0, end_s=840.0, error_rate=0.05, latency_factor=3.0)),
    Scenario("null: weight ladder 5->10->25->50", weights=((0.0, 5.0), (450.0, 10.0), (900.0, 25.0), (1350.0, 50.0))),
    Scenario("null: traffic varies 10x", rps_swing=10.0),
    Scenario("null: 1 canary request/s", rps=10.0),
)

# Issue 3's targets for the default judge: median (and p90) seconds to detect.
TARGETS: dict[str, tuple[float, float | None]] = {
    "errors 2x (1%)": (300.0, 660.0),
    "errors 4x (2%)": (60.0, None),
    "errors 10x (5%)": (30.0, None),
    "latency p50 +10%": (90.0, None),
    "latency p50 +25%": (30.0, None),
}
FALSE_ROLLBACK_TARGET = 0.01


@dataclass(frozen=True)
class Result:
    judge: str
    rollbacks: int
    releases: int
    detect_s: np.ndarray  # per release; inf when never rolled back

    @property
    def rate(self) -> float:
        return self.rollbacks / self.releases

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.detect_s, q, method="lower"))


def wald_floor_s(scenario: Scenario, alpha: float) -> float | None:
    """Wald's expected time for an SPRT that knows both arms exactly (None for a null scenario)."""
    if scenario.is_null:
        return None
    canary_per_look = scenario.rps * scenario.look_s * scenario.weights[0][1] / 100.0
    kl = 0.0
    if scenario.canary_error_factor != 1.0:
        r0 = scenario.baseline_error_rate
        r1 = r0 * scenario.canary_error_factor
        kl += r1 * math.log(r1 / r0) + (1 - r1) * math.log((1 - r1) / (1 - r0))
    if scenario.canary_latency_factor != 1.0:
        p0 = bucket_probabilities(scenario.buckets, scenario.latency_median_s, scenario.latency_sigma)
        p1 = bucket_probabilities(scenario.buckets, scenario.latency_median_s * scenario.canary_latency_factor,
                                   scenario.latency_sigma)
        keep = p1 > 0
        kl += float(np.sum(p1[keep] * np.log(p1[keep] / np.maximum(p0[keep], 1e-300))))
    looks = math.log(1.0 / alpha) / (canary_per_look * kl)
    # A decision can only be taken at a look, so the floor is a whole number of looks.
    return max(1, math.ceil(looks - 1e-9)) * scenario.look_s


def budget_floor_s(scenario: Scenario, alpha: float) -> float | None:
    """The expected time of a test that decides from the canary's share of errors (the baseline's rate
    unknown) with the error-rate's share of alpha, knowing the exact effect: Wald's
    E[N] = log(1/alpha_errors) / KL per look, where each error is the canary's with probability
    pi (traffic share) under the null and pi*f / (pi*f + 1 - pi) under the effect f. Errors only."""
    if scenario.is_null or scenario.canary_error_factor == 1.0 or scenario.canary_latency_factor != 1.0:
        return None
    share = scenario.weights[0][1] / 100.0
    factor = scenario.canary_error_factor
    p0, p1 = share, share * factor / (share * factor + 1 - share)
    kl_per_error = p1 * math.log(p1 / p0) + (1 - p1) * math.log((1 - p1) / (1 - p0))
    r0 = scenario.baseline_error_rate
    errors_per_look = scenario.rps * scenario.look_s * ((1 - share) * r0 + share * r0 * factor)
    looks = math.log(1.0 / (alpha * error_share())) / (errors_per_look * kl_per_error)
    return max(1, math.ceil(looks - 1e-9)) * scenario.look_s


def error_share() -> float:
    """The error-rate's fraction of alpha in the default judge, which judges both built-in metrics."""
    return SequentialJudge.from_options(0.01, BUILTIN_METRICS, {}).share(ERROR_RATE)


def run_judge(name: str, streams: Streams, alpha: float, releases: int) -> Result:
    judge = make_judge(name, alpha=alpha)
    releases = min(releases, streams.releases)
    detect = np.full(releases, math.inf)
    for release in range(releases):
        outcomes = judge.outcomes(streams.history(release))
        first = next((i for i, o in enumerate(outcomes) if o is Outcome.FAIL), None)
        if first is not None:
            detect[release] = float(streams.t[first])
    return Result(name, int(np.isfinite(detect).sum()), releases, detect)


def _seconds(value: float) -> str:
    return ">1800" if not math.isfinite(value) else f"{value:.0f}"


def _upper_95(k: int, n: int) -> float:
    """One-sided 95% Clopper-Pearson upper bound on a rate seen k times in n."""
    from scipy.stats import beta

    return 1.0 if k == n else float(beta.ppf(0.95, k + 1, n - k))


def report(scenario: Scenario, results: Sequence[Result], alpha: float) -> list[str]:
    floor = wald_floor_s(scenario, alpha)
    lines = [f"\n## {scenario.name}   (SPRT floor: {'n/a (null)' if floor is None else f'{floor:.0f} s'})"]
    budget = budget_floor_s(scenario, alpha)
    if budget is not None:
        lines.append(f"   (expected time of a test on the canary's share of errors with {error_share():.0%} of alpha "
                     f"(the rest is latency's), knowing the effect: {budget:.0f} s)")
    label = "false rollback" if scenario.is_null else "power (30 min)"
    lines.append(f"{'judge':<12} {'releases':>8} {label:>22} {'median s':>9} {'p90 s':>7}")
    for r in results:
        rate = f"{r.rate:.1%}"
        if scenario.is_null:
            rate += f" (<= {_upper_95(r.rollbacks, r.releases):.1%})"
        lines.append(f"{r.judge:<12} {r.releases:>8} {rate:>22} {_seconds(r.quantile(0.5)):>9} "
                     f"{_seconds(r.quantile(0.9)):>7}")
    return lines


def verdicts(scenario: Scenario, results: Sequence[Result], alpha: float) -> list[str]:
    by_name = {r.judge: r for r in results}
    ours = by_name.get("sequential")
    if ours is None:
        return []
    out = []
    if scenario.is_null:
        met = ours.rate <= FALSE_ROLLBACK_TARGET
        out.append(f"[{'met' if met else 'MISSED'}] {scenario.name}: false rollback {ours.rate:.1%} <= 1%")
        return out
    median, p90 = ours.quantile(0.5), ours.quantile(0.9)
    target = TARGETS.get(scenario.name)
    if target is not None:
        want_median, want_p90 = target
        ok = median <= want_median and (want_p90 is None or p90 <= want_p90)
        wanted = f"median <= {want_median:.0f} s" + ("" if want_p90 is None else f", p90 <= {want_p90:.0f} s")
        out.append(f"[{'met' if ok else 'MISSED'}] {scenario.name}: {wanted} (median {_seconds(median)}, "
                   f"p90 {_seconds(p90)})")
    floor = wald_floor_s(scenario, alpha)
    if floor is not None:
        ok = median <= 2 * floor
        out.append(f"[{'met' if ok else 'MISSED'}] {scenario.name}: median within 2x of the SPRT floor "
                   f"({_seconds(median)} <= {2 * floor:.0f} s)")
    others = [r for r in results if r.judge != "sequential"]
    ahead = all(median < r.quantile(0.5) for r in others)
    shown = ", ".join(f"{r.judge} {_seconds(r.quantile(0.5))}" for r in others)
    out.append(f"[{'met' if ahead else 'MISSED'}] {scenario.name}: ahead of both baselines ({shown})")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=1000,
                        help="simulated releases per scenario for the default judge (default 1000)")
    parser.add_argument("--baseline-releases", type=int, default=200,
                        help="how many of them the baseline judges see (default 200; about 5 minutes in all)")
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=None, help="scenario names (substring match) to run")
    parser.add_argument("--judges", nargs="*", default=list(JUDGES), choices=JUDGES)
    args = parser.parse_args(argv)

    chosen = [s for s in SCENARIOS if args.only is None or any(o in s.name for o in args.only)]
    print(f"# Judges on the same streams: {args.releases} releases per scenario (baselines: the first "
          f"{min(args.baseline_releases, args.releases)}), alpha {args.alpha}, looks every 10 s for 30 min")
    summary: list[str] = []
    started = time.monotonic()
    for index, scenario in enumerate(chosen):
        streams = simulate(scenario, args.releases, seed=args.seed * 1000 + index)
        results = [run_judge(name, streams, args.alpha,
                             args.releases if name == "sequential" else args.baseline_releases)
                   for name in args.judges]
        print("\n".join(report(scenario, results, args.alpha)), flush=True)
        summary.extend(verdicts(scenario, results, args.alpha))
    print("\n## Cost of one controller tick: evaluate() on a 30-minute history (180 looks)")
    streams = simulate(SCENARIOS[0], 5, seed=args.seed)
    for name in args.judges:
        judge = make_judge(name, alpha=args.alpha)
        tick = time.perf_counter()
        for release in range(streams.releases):
            judge.evaluate(streams.history(release))
        per_release_ms = (time.perf_counter() - tick) / streams.releases * 1000
        print(f"{name:<12} {per_release_ms:6.1f} ms per release")
    print("\n## Targets (default judge: sequential)")
    print("\n".join(summary))
    print(f"\n(took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

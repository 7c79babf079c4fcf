"""Simulated request streams for canary releases: the benchmark and the tests share them.

A scenario describes one 30-minute release as seen by Prometheus: every `look_s` seconds, how many
requests each arm served, how many failed (5xx) and how their latencies fell into histogram buckets.
Traffic is split at random request by request (like nginx's `split_clients`), errors are Bernoulli per
request and latencies lognormal. `simulate` draws many independent releases at once with numpy, so
every judge can be run on exactly the same streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from analysis.model import ArmCounts, Interval

# Prometheus client libraries' default histogram buckets (seconds); +Inf closes the histogram.
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


@dataclass(frozen=True)
class Incident:
    """Something that hits both arms alike for a while (a dependency outage, a GC storm)."""

    start_s: float
    end_s: float
    error_rate: float
    latency_factor: float


@dataclass(frozen=True)
class Scenario:
    name: str
    canary_error_factor: float = 1.0  # canary error rate / baseline error rate
    canary_latency_factor: float = 1.0  # canary median latency / baseline median latency
    rps: float = 100.0  # mean total requests per second (both arms)
    rps_swing: float = 1.0  # max/min ratio of the traffic over the release (a slow sine wave)
    weights: tuple[tuple[float, float], ...] = ((0.0, 10.0),)  # (from second, canary percent) steps
    baseline_error_rate: float = 0.005
    latency_median_s: float = 0.1
    latency_sigma: float = 0.5  # of log latency
    incident: Incident | None = None
    duration_s: float = 1800.0
    look_s: float = 10.0
    buckets: tuple[float, ...] = DEFAULT_BUCKETS

    @property
    def is_null(self) -> bool:
        """True when the canary is exactly as good as the baseline: any rollback is a false one."""
        return self.canary_error_factor == 1.0 and self.canary_latency_factor == 1.0

    @property
    def look_times(self) -> NDArray[np.float64]:
        count = round(self.duration_s / self.look_s)
        return self.look_s * np.arange(1, count + 1, dtype=float)

    def weight_at(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """Canary percent in the interval ending at `t` (a step's weight applies from its start)."""
        weight = np.full(t.shape, self.weights[0][1])
        for start, percent in self.weights:
            weight = np.where(t - self.look_s >= start, percent, weight)
        return weight

    def rps_at(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.rps_swing == 1.0:
            return np.full(t.shape, self.rps)
        # Geometric sine between rps/sqrt(swing) and rps*sqrt(swing): one full cycle per release.
        phase = 2.0 * np.pi * (t - self.look_s / 2) / self.duration_s
        return np.asarray(self.rps * np.exp(0.5 * np.log(self.rps_swing) * np.sin(phase)), dtype=float)


@dataclass(frozen=True)
class Streams:
    """Per-release, per-look counts: arrays of shape (releases, looks[, buckets])."""

    scenario: Scenario
    t: NDArray[np.float64]
    weight: NDArray[np.float64]
    baseline_requests: NDArray[np.float64]
    baseline_errors: NDArray[np.float64]
    canary_requests: NDArray[np.float64]
    canary_errors: NDArray[np.float64]
    baseline_buckets: NDArray[np.float64]  # cumulative counts per bucket bound
    canary_buckets: NDArray[np.float64]

    @property
    def releases(self) -> int:
        return int(self.baseline_requests.shape[0])

    def history(self, release: int, looks: int | None = None) -> list[Interval]:
        """The judge's input for one release: the first `looks` intervals (all by default)."""
        end = self.t.size if looks is None else looks
        bounds = self.scenario.buckets
        out = []
        for i in range(end):
            out.append(Interval(
                t=float(self.t[i]),
                weight=float(self.weight[i]),
                baseline=ArmCounts(
                    float(self.baseline_requests[release, i]), float(self.baseline_errors[release, i]),
                    tuple(zip(bounds, self.baseline_buckets[release, i].tolist(), strict=True))),
                canary=ArmCounts(
                    float(self.canary_requests[release, i]), float(self.canary_errors[release, i]),
                    tuple(zip(bounds, self.canary_buckets[release, i].tolist(), strict=True))),
            ))
        return out


def bucket_probabilities(bounds: Sequence[float], median_s: float, sigma: float) -> NDArray[np.float64]:
    """Share of lognormal latencies (median, sigma of log) falling in each bucket (not cumulative)."""
    finite = np.array([b for b in bounds if np.isfinite(b)])
    cdf = ndtr((np.log(finite) - np.log(median_s)) / sigma)
    cdf = np.append(cdf, 1.0)
    return np.diff(np.concatenate(([0.0], cdf)))


def simulate(scenario: Scenario, releases: int, seed: int) -> Streams:
    rng = np.random.default_rng(seed)
    t = scenario.look_times
    weight = scenario.weight_at(t)
    looks = t.size
    total = rng.poisson(scenario.rps_at(t) * scenario.look_s, size=(releases, looks)).astype(float)
    canary = rng.binomial(total.astype(np.int64), weight / 100.0).astype(float)
    baseline = total - canary

    base_rate = np.full(looks, scenario.baseline_error_rate)
    base_latency = np.full(looks, scenario.latency_median_s)
    can_rate = np.full(looks, scenario.baseline_error_rate * scenario.canary_error_factor)
    can_latency = np.full(looks, scenario.latency_median_s * scenario.canary_latency_factor)
    if scenario.incident is not None:
        inc = scenario.incident
        during = (t > inc.start_s) & (t - scenario.look_s < inc.end_s)
        base_rate = np.where(during, np.maximum(base_rate, inc.error_rate), base_rate)
        can_rate = np.where(during, np.maximum(can_rate, inc.error_rate), can_rate)
        base_latency = np.where(during, base_latency * inc.latency_factor, base_latency)
        can_latency = np.where(during, can_latency * inc.latency_factor, can_latency)

    base_err = rng.binomial(baseline.astype(np.int64), np.minimum(base_rate, 1.0)).astype(float)
    can_err = rng.binomial(canary.astype(np.int64), np.minimum(can_rate, 1.0)).astype(float)

    n_buckets = len(scenario.buckets)
    base_hist = np.empty((releases, looks, n_buckets))
    can_hist = np.empty((releases, looks, n_buckets))
    for i in range(looks):
        pb = bucket_probabilities(scenario.buckets, float(base_latency[i]), scenario.latency_sigma)
        pc = bucket_probabilities(scenario.buckets, float(can_latency[i]), scenario.latency_sigma)
        base_hist[:, i] = np.cumsum(rng.multinomial(baseline[:, i].astype(np.int64), pb), axis=1)
        can_hist[:, i] = np.cumsum(rng.multinomial(canary[:, i].astype(np.int64), pc), axis=1)

    return Streams(scenario, t, weight, baseline, base_err, canary, can_err, base_hist, can_hist)

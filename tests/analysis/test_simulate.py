"""The simulator produces what the benchmark's scenarios say, so the benchmark measures the judges."""

from __future__ import annotations

import numpy as np

from analysis.simulate import Incident, Scenario, simulate


def test_counts_follow_the_split_and_the_error_rates() -> None:
    streams = simulate(Scenario("2x", canary_error_factor=2.0), 50, seed=1)
    canary_share = streams.canary_requests.sum() / (streams.canary_requests + streams.baseline_requests).sum()
    assert abs(canary_share - 0.10) < 0.005
    base_rate = streams.baseline_errors.sum() / streams.baseline_requests.sum()
    canary_rate = streams.canary_errors.sum() / streams.canary_requests.sum()
    assert abs(base_rate - 0.005) < 0.0005 and abs(canary_rate - 0.01) < 0.001


def test_buckets_are_cumulative_and_end_with_the_request_count() -> None:
    streams = simulate(Scenario("null", duration_s=60.0), 3, seed=2)
    assert np.all(np.diff(streams.canary_buckets, axis=-1) >= 0)
    assert np.array_equal(streams.canary_buckets[..., -1], streams.canary_requests)
    assert np.array_equal(streams.baseline_buckets[..., -1], streams.baseline_requests)


def test_weight_ladder_and_incident_apply_to_the_right_intervals() -> None:
    scenario = Scenario("ladder", weights=((0.0, 5.0), (60.0, 50.0)), duration_s=120.0,
                        incident=Incident(start_s=60.0, end_s=90.0, error_rate=0.5, latency_factor=1.0))
    streams = simulate(scenario, 20, seed=3)
    assert streams.weight.tolist() == [5.0] * 6 + [50.0] * 6
    during = slice(6, 9)
    rate = streams.baseline_errors[:, during].sum() / streams.baseline_requests[:, during].sum()
    assert 0.45 < rate < 0.55


def test_history_matches_the_arrays() -> None:
    streams = simulate(Scenario("null", duration_s=30.0), 2, seed=4)
    history = streams.history(1)
    assert [i.t for i in history] == [10.0, 20.0, 30.0]
    assert history[2].canary.requests == streams.canary_requests[1, 2]
    assert history[2].canary.buckets[-1] == (float("inf"), streams.canary_requests[1, 2])

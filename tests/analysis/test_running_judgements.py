"""Judges followed look by look (`judge.follow()`) decide exactly as a full re-evaluation of the history.

The reference is each judge's own `evaluate` on the history as it stood at that look: the code path
the controller took before judgements kept running statistics, still used by replay and backtest.

What "the same" means, per number:
- outcomes and metric names: identical at every look, for every judge; reasons too, but for one case
  below;
- evidence: identical (`==`), except
  - the sequential judge's error totals (`canary_requests`, `canary_errors`, `baseline_*` and the rates
    and ratio made from them): `evaluate` adds a column with `np.sum` (pairwise), a judgement adds one
    interval at a time; the same numbers summed in another order agree to 1e-12 relative (exactly, for
    whole-number counts; the corpus has fractional ones, as Prometheus' `increase()` gives). The error
    reason prints the ratio to 3 digits, which can then round the other way: its words are compared,
    and its numbers to 1e-2 relative;
  - the sequential judge's latency e-values (`e_value_slower`, `e_value_not_slower`): `evaluate`
    computes every interval's noncentral-hypergeometric likelihood ratio in one batch whose shape
    depends on the widest interval of the history (the exponent shift and padding of the tilted sums),
    so even `evaluate` itself gives an interval last-bit-different ratios at different looks (see
    `test_full_evaluation_itself_is_batch_dependent_in_the_last_bits`). A judgement computes each
    interval once, alone. Summed over a history these differences stay below 1e-10 relative on the
    e-value (2.4e-12 is the largest seen on this corpus); the decisions built on them are identical.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from analysis.judges import make_judge
from analysis.judges.base import Judge, as_arrays
from analysis.judges.running import REVISABLE_SECONDS, Judgement
from analysis.judges.sequential import latency_rows
from analysis.model import ArmCounts, Interval, Outcome, Verdict, combine
from analysis.replay import read_csv
from analysis.simulate import Incident, Scenario, simulate
from tests.analysis.test_replay import HEADER, write_streams

JUDGE_NAMES = ("sequential", "mannwhitney", "threshold")
SUMMED_IN_ANOTHER_ORDER = {"canary_requests", "baseline_requests", "canary_errors", "baseline_errors",
                           "canary_error_rate", "baseline_error_rate", "rate_ratio"}
BATCH_DEPENDENT = {"e_value_slower", "e_value_not_slower"}


def tolerance(judge: str, metric: str, key: str) -> float:
    if judge != "sequential":
        return 0.0
    if metric == "error-rate" and key in SUMMED_IN_ANOTHER_ORDER:
        return 1e-12
    if metric == "latency" and key in BATCH_DEPENDENT:
        return 1e-10
    return 0.0


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?%?")


def assert_same_reason(judge: str, metric: str, mine: str, theirs: str) -> None:
    if judge != "sequential" or metric != "error-rate" or mine == theirs:
        assert mine == theirs
        return
    assert NUMBER.sub("#", mine) == NUMBER.sub("#", theirs)
    for a, b in zip(NUMBER.findall(mine), NUMBER.findall(theirs), strict=True):
        assert float(a.rstrip("%")) == pytest.approx(float(b.rstrip("%")), rel=1e-2), (mine, theirs)


def assert_same(judge: str, look: int, running: Sequence[Verdict], full: Sequence[Verdict]) -> None:
    assert [(v.metric, v.outcome) for v in running] == [(v.metric, v.outcome) for v in full], look
    for mine, theirs in zip(running, full, strict=True):
        assert_same_reason(judge, mine.metric, mine.reason, theirs.reason)
        assert mine.evidence.keys() == theirs.evidence.keys(), (look, mine.metric)
        for key, value in mine.evidence.items():
            expected = theirs.evidence[key]
            allowed = tolerance(judge, mine.metric, key)
            if allowed and isinstance(value, float) and isinstance(expected, float):
                assert value == pytest.approx(expected, rel=allowed, abs=0.0), (look, mine.metric, key)
            else:
                assert value == expected, (look, mine.metric, key, value, expected)


# --- the corpus -----------------------------------------------------------------------------------

def scaled(history: list[Interval], factor: float) -> list[Interval]:
    """Fractional counts, as Prometheus' increase() extrapolates them."""
    def arm(counts: ArmCounts) -> ArmCounts:
        return ArmCounts(counts.requests * factor, counts.errors * factor,
                         tuple((b, c * factor) for b, c in counts.buckets))
    return [dataclasses.replace(i, baseline=arm(i.baseline), canary=arm(i.canary)) for i in history]


def with_gaps(history: list[Interval], seed: int) -> list[Interval]:
    """Missing intervals (no row at all), empty ones, and ones without a histogram."""
    rng = random.Random(seed)
    out: list[Interval] = []
    for interval in history:
        roll = rng.random()
        if roll < 0.1:
            continue
        if roll < 0.18:
            interval = dataclasses.replace(interval, baseline=ArmCounts(0.0, 0.0), canary=ArmCounts(0.0, 0.0))
        elif roll < 0.26:
            interval = dataclasses.replace(interval, baseline=ArmCounts(interval.baseline.requests,
                                                                        interval.baseline.errors),
                                           canary=ArmCounts(interval.canary.requests, interval.canary.errors))
        out.append(interval)
    return out


def relabelled_buckets(history: list[Interval], start: int) -> list[Interval]:
    """A histogram whose layout changes part-way (a new app version with other buckets)."""
    def arm(counts: ArmCounts) -> ArmCounts:
        return ArmCounts(counts.requests, counts.errors, tuple((b * 2, c) for b, c in counts.buckets))
    return history[:start] + [dataclasses.replace(i, baseline=arm(i.baseline), canary=arm(i.canary))
                              for i in history[start:]]


def no_buckets_until(history: list[Interval], start: int) -> list[Interval]:
    bare = [dataclasses.replace(i, baseline=ArmCounts(i.baseline.requests, i.baseline.errors),
                                canary=ArmCounts(i.canary.requests, i.canary.errors)) for i in history[:start]]
    return bare + history[start:]


SHORT = 600.0
SCENARIOS = [
    Scenario("null", duration_s=SHORT),
    Scenario("errors-2x", canary_error_factor=2.0, duration_s=SHORT),
    Scenario("errors-4x", canary_error_factor=4.0, duration_s=SHORT),
    Scenario("errors-10x", canary_error_factor=10.0, look_s=2.0, duration_s=120.0),
    Scenario("latency+10%", canary_latency_factor=1.1, duration_s=SHORT),
    Scenario("latency+30%", canary_latency_factor=1.3, look_s=30.0, duration_s=900.0),
    Scenario("weight-ladder", weights=((0.0, 5.0), (120.0, 10.0), (240.0, 25.0), (360.0, 50.0)), duration_s=SHORT),
    Scenario("varying-traffic", rps=20.0, rps_swing=30.0, canary_error_factor=1.5, duration_s=SHORT),
    Scenario("incident", incident=Incident(100.0, 250.0, 0.2, 3.0), duration_s=SHORT),
    Scenario("trickle", rps=1.0, duration_s=SHORT),
    Scenario("long-null", duration_s=1800.0),
]


def corpus(tmp_path: Path) -> Iterator[tuple[str, list[Interval]]]:
    for number, scenario in enumerate(SCENARIOS):
        streams = simulate(scenario, 1, seed=100 + number)
        yield scenario.name, streams.history(0)
        if scenario.name in ("null", "varying-traffic", "latency+10%"):
            yield f"{scenario.name} fractional", scaled(streams.history(0), 1.0137)
            yield f"{scenario.name} with gaps", with_gaps(streams.history(0), seed=number)
            # Replay files: %g-rounded counts, read back by `weir analyze replay`'s reader.
            yield f"{scenario.name} csv", read_csv(str(write_streams(tmp_path / f"{number}.csv", streams)))
    base = simulate(SCENARIOS[4], 1, seed=7).history(0)
    yield "layout change", relabelled_buckets(base, 20)
    yield "histogram appears late", no_buckets_until(base, 15)
    blank = tmp_path / "blank.csv"
    rows = [f"{10 * i},10,900,{i % 3},100,{i % 2},{'450,900,50,100' if i % 4 else ',,,'}" for i in range(1, 40)]
    blank.write_text(HEADER + ",baseline_le_0.1,baseline_le_+Inf,canary_le_0.1,canary_le_+Inf\n" + "\n".join(rows))
    yield "csv blank bucket rows", read_csv(str(blank))


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, list[Interval]]]:
    return list(corpus(tmp_path_factory.mktemp("corpus")))


# --- equality, look by look -----------------------------------------------------------------------

@pytest.mark.parametrize("name", JUDGE_NAMES)
def test_a_followed_release_gets_the_verdicts_of_a_full_re_evaluation_at_every_look(
        name: str, histories: list[tuple[str, list[Interval]]]) -> None:
    judge = make_judge(name)
    for label, history in histories:
        judgement = judge.follow()
        decisions = []
        for look in range(len(history) + 1):
            running = judgement.evaluate(history[:look])
            assert_same(name, look, running, judge.evaluate(history[:look]))
            decisions.append(combine(running).outcome)
        assert judgement.added == len(history), label  # each interval added once
        one_pass = judge.outcomes(history)
        first_fail = next((i for i, o in enumerate(one_pass) if o is Outcome.FAIL), len(one_pass))
        assert decisions[1:first_fail + 2] == one_pass[:first_fail + 1], label


def test_the_corpus_reaches_every_decision_of_every_judge(histories: list[tuple[str, list[Interval]]]) -> None:
    """The equality above means something only if the corpus makes each judge fail, pass and hold."""
    for name in JUDGE_NAMES:
        seen = {o for _, history in histories for o in make_judge(name).outcomes(history)}
        assert {Outcome.FAIL, Outcome.PASS, Outcome.CONTINUE} <= seen, name
    sequential = {v.outcome for _, h in histories for v in make_judge("sequential").evaluate(h[:3])}
    assert Outcome.NODATA in sequential


def test_full_evaluation_itself_is_batch_dependent_in_the_last_bits() -> None:
    """Why latency e-values are compared to 1e-10 and not bit for bit (see the module docstring)."""
    history = simulate(Scenario("x", rps=30.0, rps_swing=20.0), 1, seed=3).history(0)
    early = latency_rows(as_arrays(history[:5])).log_lr[0]
    late = latency_rows(as_arrays(history[:60])).log_lr[0][:5]
    assert not np.array_equal(early, late)
    assert np.allclose(early, late, rtol=0.0, atol=1e-12)


# --- histories that change between looks ----------------------------------------------------------

def partial(interval: Interval, share: float) -> Interval:
    """The interval as first read, before its last scrapes landed."""
    def arm(counts: ArmCounts) -> ArmCounts:
        return ArmCounts(counts.requests * share, counts.errors * share,
                         tuple((b, c * share) for b, c in counts.buckets))
    return dataclasses.replace(interval, baseline=arm(interval.baseline), canary=arm(interval.canary))


def copies(history: Sequence[Interval]) -> list[Interval]:
    """The same values in new objects, as a re-fetch makes them."""
    return [dataclasses.replace(i) for i in history]


@pytest.mark.parametrize("name", JUDGE_NAMES)
def test_a_revised_newest_interval_is_replaced_not_counted_twice(name: str) -> None:
    judge = make_judge(name)
    history = simulate(Scenario("errors-4x", canary_error_factor=4.0, duration_s=300.0), 1, seed=11).history(0)
    judgement = judge.follow()
    for look in range(1, len(history) + 1):
        first_read = [*history[:look - 1], partial(history[look - 1], 0.6)]
        assert_same(name, look, judgement.evaluate(first_read), judge.evaluate(first_read))
        assert_same(name, look, judgement.evaluate(history[:look]), judge.evaluate(history[:look]))
    assert judgement.added == 2 * len(history)  # the partial read and its revision, nothing more


@pytest.mark.parametrize("name", JUDGE_NAMES)
def test_a_re_fetched_history_of_equal_intervals_adds_nothing(name: str) -> None:
    judge = make_judge(name)
    history = simulate(Scenario("null", duration_s=300.0), 1, seed=12).history(0)
    judgement = judge.follow()
    judgement.evaluate(history)
    assert_same(name, len(history), judgement.evaluate(copies(history)), judge.evaluate(history))
    assert_same(name, len(history), judgement.evaluate(list(history)), judge.evaluate(history))
    assert judgement.added == len(history)


@pytest.mark.parametrize("name", JUDGE_NAMES)
def test_a_revision_older_than_the_revisable_window_is_judged_again_from_the_start(name: str) -> None:
    judge = make_judge(name)
    history = simulate(Scenario("null", duration_s=600.0), 1, seed=13).history(0)
    judgement = judge.follow()
    judgement.evaluate(history)
    old = next(i for i, interval in enumerate(history) if interval.t < history[-1].t - 2 * REVISABLE_SECONDS)
    revised = [*history[:old], partial(history[old], 0.5), *history[old + 1:]]
    assert_same(name, len(history), judgement.evaluate(revised), judge.evaluate(revised))
    assert judgement.added == 2 * len(history)


@pytest.mark.parametrize("name", JUDGE_NAMES)
def test_a_shorter_history_a_new_release_starts_afresh(name: str) -> None:
    judge = make_judge(name)
    first = simulate(Scenario("errors-10x", canary_error_factor=10.0, duration_s=600.0), 1, seed=14).history(0)
    second = simulate(Scenario("null", duration_s=200.0), 1, seed=15).history(0)
    judgement = judge.follow()
    judgement.evaluate(first)
    for look in range(1, len(second) + 1):
        assert_same(name, look, judgement.evaluate(second[:look]), judge.evaluate(second[:look]))


def randomized_looks(truth: list[Interval], rng: random.Random) -> Iterator[list[Interval]]:
    """What a metrics source hands the judge over a release: the history grows by a few intervals per
    look; the newest ones are often first read short and revised later (sometimes several, sometimes
    further back than the revisable window); sometimes everything comes back as fresh copies."""
    end = 0
    while end < len(truth):
        end = min(len(truth), end + rng.choice((1, 1, 1, 2, 3)))
        seen = list(truth[:end])
        roll = rng.random()
        if roll < 0.4:
            for back in range(1, rng.randint(1, 4) + 1):
                if back <= len(seen):
                    seen[-back] = partial(seen[-back], rng.uniform(0.3, 0.95))
        elif roll < 0.5:
            seen = copies(seen)
        elif roll < 0.55 and len(seen) > 3:
            old = rng.randrange(len(seen) - 1)
            seen[old] = partial(seen[old], 0.5)
        yield seen


@pytest.mark.parametrize("name", JUDGE_NAMES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_randomized_reads_and_revisions_give_the_full_verdicts_at_every_look(name: str, seed: int) -> None:
    rng = random.Random(seed)
    scenario = rng.choice([s for s in SCENARIOS if s.duration_s <= 600.0])
    truth = simulate(scenario, 1, seed=seed).history(0)
    judge: Judge = make_judge(name)
    judgement: Judgement[object] = judge.follow()
    for look, seen in enumerate(randomized_looks(truth, rng)):
        assert_same(name, look, judgement.evaluate(seen), judge.evaluate(seen))


def test_cost_of_a_look_does_not_depend_on_the_age_of_the_release() -> None:
    """Counted in intervals added, not in time: a new interval adds one, however long the history."""
    history = simulate(Scenario("null", look_s=2.0, duration_s=1800.0), 1, seed=16).history(0)
    judgement = make_judge("sequential").follow()
    for look in (10, 300, 899):
        judgement.evaluate(history[:look])
        before = judgement.added
        judgement.evaluate(history[:look + 1])
        assert judgement.added - before == 1
    assert math.isfinite(REVISABLE_SECONDS)


@pytest.mark.parametrize(("name", "options"), [
    ("sequential", {"metrics": ("error-rate",)}),
    ("sequential", {"metrics": ("latency",), "alpha": 0.2, "latency_margin": 0.2}),
    ("sequential", {"alpha": 0.05, "pass_alpha": 0.2, "error_margin": 0.5, "error_floor": 0.001}),
    ("mannwhitney", {"metrics": ("latency",), "min_intervals": 1, "confidence": 0.9}),
    ("threshold", {"failure_threshold": 2, "check_interval_s": 25, "max_latency_ms": 250}),
])
def test_judge_options_are_honoured_the_same_way(name: str, options: dict[str, object]) -> None:
    judge = make_judge(name, **options)  # type: ignore[arg-type]
    for number, scenario in enumerate((SCENARIOS[2], SCENARIOS[5], SCENARIOS[7])):
        history = simulate(dataclasses.replace(scenario, duration_s=300.0), 1, seed=200 + number).history(0)
        judgement = judge.follow()
        for look in range(len(history) + 1):
            assert_same(name, look, judgement.evaluate(history[:look]), judge.evaluate(history[:look]))

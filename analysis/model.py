"""Values that flow into and out of the analysis engine.

These are the only types the controller needs from `analysis/`: per-interval counts for each arm
(baseline = primary, canary) and the verdict a judge returns. Everything here is immutable.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

# JSON-friendly evidence: a judge explains itself with plain numbers and strings.
Evidence = Mapping[str, "float | int | str | bool | None"]


@dataclass(frozen=True)
class ArmCounts:
    """What one arm served during one interval (counts for that interval only, not cumulative).

    `buckets` are Prometheus-style cumulative latency buckets for the interval: pairs of
    (upper bound in seconds, requests with latency <= bound), sorted by bound, `inf` last.
    Empty when latency is not measured.
    """

    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Interval:
    """One look: the end of the interval (seconds since the canary started) and both arms' counts."""

    t: float
    weight: float  # the canary's share of traffic in percent during this interval
    baseline: ArmCounts
    canary: ArmCounts


class Outcome(enum.StrEnum):
    FAIL = "fail"  # canary is worse: roll back
    PASS = "pass"  # evidence that the canary is not worse than the margin
    CONTINUE = "continue"  # data is flowing, no conclusion yet
    NODATA = "nodata"  # too little traffic, or the metrics source failed: never a pass

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Verdict:
    """A judge's answer for one metric (or the combination of several), with its evidence."""

    outcome: Outcome
    metric: str
    reason: str
    evidence: Evidence = field(default_factory=dict)


def combine(verdicts: list[Verdict]) -> Verdict:
    """Fold per-metric verdicts into one: any fail fails; pass needs every metric to pass;
    nodata anywhere holds the step unless something already failed."""
    if not verdicts:
        return Verdict(Outcome.NODATA, "all", "no metrics configured")
    for wanted in (Outcome.FAIL, Outcome.NODATA, Outcome.CONTINUE):
        hits = [v for v in verdicts if v.outcome is wanted]
        if hits:
            return Verdict(wanted, "all", "; ".join(f"{v.metric}: {v.reason}" for v in hits),
                           {v.metric: v.outcome.value for v in verdicts})
    return Verdict(Outcome.PASS, "all", "every metric passed", {v.metric: v.outcome.value for v in verdicts})

"""Judges turn per-interval counts into verdicts. The controller uses exactly this:

    judge = make_judge("sequential", alpha=0.01, metrics=("error-rate", "latency"))
    verdicts = judge.evaluate(history)   # one Verdict per metric
    overall = analysis.model.combine(verdicts)

Every judge is a pure function of the history (no state between calls), so a restarted controller
that re-reads the history reaches the same verdict. The controller follows each release with
`judgement = judge.follow()` and calls `judgement.evaluate(history)` at every look: the same verdicts,
for the cost of the intervals that are new since the last look (analysis.judges.running).
"""

from __future__ import annotations

from collections.abc import Sequence

from analysis.judges.base import BUILTIN_METRICS, Judge
from analysis.judges.mannwhitney import MannWhitneyJudge
from analysis.judges.sequential import SequentialJudge
from analysis.judges.threshold import ThresholdJudge

JUDGES = ("sequential", "mannwhitney", "threshold")


def make_judge(name: str = "sequential", alpha: float = 0.01,
               metrics: Sequence[str] = BUILTIN_METRICS, **options: object) -> Judge:
    """Build a judge by name; unknown names or bad options raise ValueError naming the option."""
    if name == "sequential":
        return SequentialJudge.from_options(alpha, metrics, options)
    if name == "mannwhitney":
        return MannWhitneyJudge.from_options(alpha, metrics, options)
    if name == "threshold":
        return ThresholdJudge.from_options(alpha, metrics, options)
    raise ValueError(f"judge: unknown judge {name!r}; choose one of {', '.join(JUDGES)}")


__all__ = ["JUDGES", "Judge", "MannWhitneyJudge", "SequentialJudge", "ThresholdJudge", "make_judge"]

"""The judging hook: at every step the controller asks a judge for a verdict on the canary.

`ReadinessJudge` is the built-in used when no Prometheus is configured: the machine only asks once the
canary is ready, so it passes and the step's hold time decides. `AnalysisJudge` (canary/analysis_judge.py)
asks the analysis engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from analysis.model import Outcome, Verdict
from canary.config import AnalysisSpec


@dataclass(frozen=True)
class ReleaseWindow:
    """What a judge needs to know about one release in progress."""

    namespace: str
    name: str
    primary: str
    canary: str
    revision: int
    started_at: float  # when traffic first reached the canary (unix seconds)
    router: str


class Judge(Protocol):
    def verdict(self, window: ReleaseWindow, spec: AnalysisSpec, now: float) -> Verdict: ...

    def forget(self, namespace: str, name: str) -> None:
        """The release ended; drop anything kept for it."""

    def config_error(self, spec: AnalysisSpec, namespace: str, name: str) -> str | None:
        """What is wrong with `spec` that only the metrics source can tell (e.g. a guard rail's PromQL
        its Prometheus cannot parse): a field path and the fix, or None."""


class ReadinessJudge:
    def verdict(self, window: ReleaseWindow, spec: AnalysisSpec, now: float) -> Verdict:
        return Verdict(Outcome.PASS, "readiness", "canary is ready (no metrics analysis configured)")

    def forget(self, namespace: str, name: str) -> None:
        return None

    def config_error(self, spec: AnalysisSpec, namespace: str, name: str) -> str | None:
        return None

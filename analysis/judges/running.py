"""A judge's running statistics for one release: each look adds only what is new in the history.

A judge's `evaluate` reads the whole history at every look, so its cost grows with the release's age.
A `Judgement` (from `judge.follow()`) keeps the judge's statistics after every interval it has seen
and, at the next look, adds only the intervals that are new, giving the verdicts `evaluate` would.

The newest intervals can still change between looks: Prometheus' last scrapes land late, so a
metrics source re-reads the recent past and may revise it. The statistics after each recent interval
are kept as checkpoints; a look compares the history with what was added before, goes back to the
checkpoint just before the first interval that differs and adds from there (a revised interval is
replaced, never counted twice). Intervals more than `REVISABLE_SECONDS` older than the newest one are
settled: their checkpoints are dropped and only a reference to them is kept, to check that they are
still the same (a list comparison that only follows pointers while the history's intervals are the
objects seen before: nanoseconds per interval). A history that differs in a settled interval, or is
shorter than what was settled, is judged again from its first interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from analysis.model import Interval, Verdict

# How far back (seconds of release time, before the newest interval) a history may still be revised
# cheaply. The Prometheus source re-reads what ended in the last `settle_seconds` (60 s) at every tick,
# all of it within 60 s of the newest interval; the rest is margin. A deeper revision is still handled,
# by judging again from the start. Memory: one checkpoint (~3 KiB for the sequential judge) per
# interval in this window (45 at 2 s intervals, 3 at 30 s).
REVISABLE_SECONDS = 90.0
# Recent intervals kept whatever their age (a history on a coarse grid still has a revisable tail).
MIN_RECENT = 2

State = TypeVar("State")


class Fold(Protocol[State]):
    """A judge's statistics as a value: `add` returns new statistics and never changes `state`."""

    def empty(self) -> State: ...

    def add(self, state: State, interval: Interval) -> State: ...

    def verdicts(self, state: State) -> list[Verdict]:
        """One verdict per metric, as the judge's `evaluate` gives them for the intervals added."""
        ...


class Judgement(Generic[State]):
    """One release followed by one judge. Not thread-safe: one look at a time per release."""

    def __init__(self, fold: Fold[State]) -> None:
        self._fold = fold
        self._settled: list[Interval] = []
        self._settled_state = fold.empty()
        self._recent: list[Interval] = []
        self._states: list[State] = []  # _states[k]: after adding _settled + _recent[: k + 1]
        self._verdicts: list[Verdict] | None = None
        self.added = 0  # intervals added so far, counting the ones added again after a revision

    def evaluate(self, history: Sequence[Interval]) -> list[Verdict]:
        """The verdicts on `history` (oldest first), adding only what changed since the last look."""
        intervals = history if isinstance(history, list) else list(history)
        settled = len(self._settled)
        prefix = intervals[:settled]
        if len(intervals) < settled or prefix != self._settled:
            self._restart()
            settled = 0
        else:
            self._settled = prefix  # equal values in the caller's objects: next time, a pointer comparison
        new = intervals[settled:]
        same = 0
        while same < min(len(new), len(self._recent)) and \
                (new[same] is self._recent[same] or new[same] == self._recent[same]):
            self._recent[same] = new[same]  # the latest object: the next comparison is by pointer
            same += 1
        if same == len(new) == len(self._recent) and self._verdicts is not None:
            return self._verdicts
        del self._recent[same:], self._states[same:]
        state = self._states[-1] if self._states else self._settled_state
        for interval in new[same:]:
            state = self._fold.add(state, interval)
            self.added += 1
            self._recent.append(interval)
            self._states.append(state)
        self._settle()
        self._verdicts = self._fold.verdicts(state)
        return self._verdicts

    def _settle(self) -> None:
        if not self._recent:
            return
        horizon = self._recent[-1].t - REVISABLE_SECONDS
        old = 0
        while len(self._recent) - old > MIN_RECENT and self._recent[old].t <= horizon:
            old += 1
        if old:
            self._settled.extend(self._recent[:old])
            self._settled_state = self._states[old - 1]
            del self._recent[:old], self._states[:old]

    def _restart(self) -> None:
        self._settled, self._recent, self._states = [], [], []
        self._settled_state = self._fold.empty()
        self._verdicts = None

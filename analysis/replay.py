"""`weir analyze replay`: what a judge decides on recorded per-interval counts (DESIGN §5, a contract).

Input: CSV files with the header `t,weight,baseline_requests,baseline_errors,canary_requests,
canary_errors`, optionally followed by latency bucket columns `baseline_le_<bound>` and
`canary_le_<bound>` (seconds, `+Inf` last, Prometheus-style cumulative counts per interval). `t` is
seconds since the canary started (end of the interval), `weight` the canary's percentage of traffic.
A bucket row may be left entirely blank when no histogram was recorded for that interval.

Output: one JSON object per file, in the order given, each on its own line:
`{"decision": "rollback"|"promote"|"continue", "at": <t of the deciding row or null>, "metrics": {...}}`.
The judge looks after every row, as the controller would: the first row whose combined verdict fails
rolls back, the first whose verdict passes (every metric) promotes; otherwise "continue". `metrics`
holds each metric's verdict and evidence at the deciding row (the last row for "continue").

Errors: every file is read and checked before anything is judged. If any file is malformed or
unreadable, nothing is printed on stdout, each problem is printed on stderr as
`FILE:LINE:COLUMN (name): message` (as much of the place as applies; just `FILE: message` when the
file cannot be read), and the exit code is 2, so a script never
mistakes a partial output for one line per file.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from analysis.judges import Judge
from analysis.model import ArmCounts, Interval, Outcome, Verdict

REQUIRED = ("t", "weight", "baseline_requests", "baseline_errors", "canary_requests", "canary_errors")
ARMS = ("baseline", "canary")


class MalformedCsv(ValueError):
    """A CSV problem located by file, line (1 = header) and column (1-based, with its name)."""

    def __init__(self, path: str, line: int, column: int | None, name: str | None, message: str) -> None:
        where = path + (f":{line}" if line else "") + (f":{column}" if column is not None else "")
        where += f" ({name})" if name else ""
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.column = path, line, column


@dataclass(frozen=True)
class Layout:
    """Where each column lives; bucket bounds are shared by both arms."""

    index: dict[str, int]
    bounds: tuple[float, ...]
    bucket_columns: dict[str, tuple[int, ...]]  # arm -> column indices, in bound order


def _parse_bound(text: str) -> float:
    if text in ("+Inf", "Inf", "inf", "+inf"):
        return math.inf
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def _layout(path: str, header: Sequence[str]) -> Layout:
    index: dict[str, int] = {}
    buckets: dict[str, list[tuple[float, int]]] = {arm: [] for arm in ARMS}
    for col, raw in enumerate(header):
        name = raw.strip()
        if name in index:
            raise MalformedCsv(path, 1, col + 1, name, "column appears twice")
        index[name] = col
        if name in REQUIRED:
            continue
        arm = next((a for a in ARMS if name.startswith(f"{a}_le_")), None)
        if arm is None:
            raise MalformedCsv(path, 1, col + 1, name, (
                f"unknown column; expected {','.join(REQUIRED)} then baseline_le_<seconds> / canary_le_<seconds>"))
        try:
            bound = _parse_bound(name[len(arm) + 4:])
        except ValueError:
            raise MalformedCsv(path, 1, col + 1, name, "bucket bound must be seconds >= 0 or +Inf") from None
        buckets[arm].append((bound, col))
    for col_name in REQUIRED:
        if col_name not in index:
            raise MalformedCsv(path, 1, None, None, f"missing column {col_name!r}; the header must start with "
                               f"{','.join(REQUIRED)}")
    bounds: dict[str, tuple[float, ...]] = {}
    for arm in ARMS:
        found = buckets[arm]
        bounds[arm] = tuple(b for b, _ in found)
        if not found:
            continue
        if list(bounds[arm]) != sorted(bounds[arm]) or len(set(bounds[arm])) != len(found):
            col = found[0][1]
            raise MalformedCsv(path, 1, col + 1, header[col].strip(), f"{arm} bucket bounds must increase")
        if bounds[arm][-1] != math.inf:
            col = found[-1][1]
            raise MalformedCsv(path, 1, col + 1, header[col].strip(), f"{arm} buckets must end with {arm}_le_+Inf")
    if bounds["baseline"] != bounds["canary"]:
        missing = "canary" if len(bounds["baseline"]) > len(bounds["canary"]) else "baseline"
        raise MalformedCsv(path, 1, None, None, f"baseline and canary must have the same bucket bounds; "
                           f"check the {missing}_le_* columns")
    return Layout(index, bounds["baseline"], {arm: tuple(c for _, c in buckets[arm]) for arm in ARMS})


def _number(path: str, line: int, col: int, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MalformedCsv(path, line, col + 1, name, f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise MalformedCsv(path, line, col + 1, name, f"{text!r} must be a finite number >= 0")
    return value


def _row(path: str, line: int, header: Sequence[str], layout: Layout, cells: Sequence[str],
         previous_t: float | None) -> Interval:
    if len(cells) != len(header):
        first_odd = min(len(cells), len(header))
        name = header[first_odd].strip() if first_odd < len(header) else None
        raise MalformedCsv(path, line, first_odd + 1, name, f"expected {len(header)} fields, found {len(cells)}")

    def value(name: str) -> float:
        col = layout.index[name]
        return _number(path, line, col, name, cells[col].strip())

    t = value("t")
    if previous_t is not None and t <= previous_t:
        raise MalformedCsv(path, line, layout.index["t"] + 1, "t", f"t must increase (previous row had {previous_t:g})")
    weight = value("weight")
    if weight > 100:
        raise MalformedCsv(path, line, layout.index["weight"] + 1, "weight", "weight is a percentage, 0 to 100")
    arms: dict[str, ArmCounts] = {}
    blank = all(not cells[c].strip() for arm in ARMS for c in layout.bucket_columns[arm])
    for arm in ARMS:
        requests, errors = value(f"{arm}_requests"), value(f"{arm}_errors")
        if errors > requests:
            col = layout.index[f"{arm}_errors"]
            raise MalformedCsv(path, line, col + 1, f"{arm}_errors",
                               f"more errors ({errors:g}) than requests ({requests:g})")
        buckets: tuple[tuple[float, float], ...] = ()
        if layout.bounds and not blank:
            counts: list[float] = []
            for col in layout.bucket_columns[arm]:
                count = _number(path, line, col, header[col].strip(), cells[col].strip())
                if counts and count < counts[-1]:
                    raise MalformedCsv(path, line, col + 1, header[col].strip(),
                                       "bucket counts are cumulative: each must be >= the previous bound's")
                counts.append(count)
            buckets = tuple(zip(layout.bounds, counts, strict=True))
        arms[arm] = ArmCounts(requests, errors, buckets)
    return Interval(t=t, weight=weight, baseline=arms["baseline"], canary=arms["canary"])


def read_csv(path: str) -> list[Interval]:
    """Parse one replay file; raise MalformedCsv naming the line and column of the first problem."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as error:
        raise MalformedCsv(path, 0, None, None, f"cannot read: {error.strerror or error}") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise MalformedCsv(path, 1, None, None, f"not a UTF-8 CSV file: {error}") from None
    if not rows:
        raise MalformedCsv(path, 1, None, None, f"empty file; the header must start with {','.join(REQUIRED)}")
    header = rows[0]
    layout = _layout(path, header)
    intervals: list[Interval] = []
    for number, cells in enumerate(rows[1:], start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        intervals.append(_row(path, number, header, layout, cells, intervals[-1].t if intervals else None))
    return intervals


def evidence(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """Per metric: outcome, reason and the judge's evidence (JSON-safe)."""
    out: dict[str, Any] = {}
    for verdict in verdicts:
        entry: dict[str, Any] = {"outcome": verdict.outcome.value, "reason": verdict.reason}
        for key, item in verdict.evidence.items():
            entry[key] = None if isinstance(item, float) and not math.isfinite(item) else item
        out[verdict.metric] = entry
    return out


def decide(judge: Judge, intervals: Sequence[Interval]) -> dict[str, Any]:
    """The decision line for one file: first failing row rolls back, first passing row promotes."""
    for index, outcome in enumerate(judge.outcomes(intervals)):
        if outcome in (Outcome.FAIL, Outcome.PASS):
            return {"decision": "rollback" if outcome is Outcome.FAIL else "promote",
                    "at": intervals[index].t,
                    "metrics": evidence(judge.evaluate(intervals[: index + 1]))}
    return {"decision": "continue", "at": None, "metrics": evidence(judge.evaluate(intervals))}

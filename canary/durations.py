"""Durations as people write them in annotations: "90s", "2m", "1m30s", "1h", "500ms", or plain seconds.

Only ASCII digits count (`[0-9]`, never `\\d`, which also matches e.g. Arabic-Indic digits that
`float()` would happily read), every duration is finite and positive, and the caller gives the
range it accepts, so `99999999999999999999h`, `inf` or `nan` never reach a timer.
"""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_PART = re.compile(rf"({_NUMBER})(ms|s|m|h)", re.ASCII)
_PLAIN = re.compile(_NUMBER, re.ASCII)
FORMS = "30s, 2m, 1m30s or 1h"
MAX_TEXT = 64  # longer than any duration anyone writes; refused before any regex runs


def parse_duration(value: object, *, at_least: float = 0.001, at_most: float = 24 * 3600.0) -> float:
    """Seconds in `value`, from `at_least` to `at_most` inclusive.

    Raises ValueError saying what is wrong; the message never repeats `value` (callers echo it in
    their own, bounded, way).
    """
    seconds = _seconds(value)
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number of seconds, like {FORMS}")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds < at_least:
        raise ValueError(f"is shorter than the minimum of {format_duration(at_least)}")
    if seconds > at_most:
        raise ValueError(f"is longer than the maximum of {format_duration(at_most)}")
    return seconds


def _seconds(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like {FORMS}")
    if isinstance(value, int):
        # A huge YAML integer (10**5000) must not reach float(), which would raise OverflowError.
        return float(value) if abs(value) < 10**18 else math.inf
    if isinstance(value, float):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like {FORMS}")
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise ValueError(f"expected a duration like {FORMS}, not {MAX_TEXT}+ characters")
    if _PLAIN.fullmatch(text):
        return float(text)
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"expected a duration like {FORMS} (ASCII digits and the units ms, s, m, h)")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return out or "0s"

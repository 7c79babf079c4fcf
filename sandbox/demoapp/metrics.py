"""Request counters and latency histograms in the Prometheus text exposition format (version 0.0.4).

Written by hand because the format is tiny and prometheus_client is not a dependency.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# 1 ms .. 10 s, roughly three buckets per decade: fine enough to see a +30% latency shift.
LATENCY_BUCKETS_SECONDS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)


@dataclass(frozen=True)
class Gauge:
    name: str
    help: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


@dataclass
class _Histogram:
    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_SECONDS) + 1))
    total_seconds: float = 0.0
    count: int = 0


class RequestMetrics:
    """What the app served, by status code and method."""

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str], int] = {}
        self._latency: dict[tuple[str, str], _Histogram] = {}
        # Series that exist from the first scrape make rate() see the very first requests; a series
        # that appears later loses its first increment in Prometheus.
        for code in ("200", "500"):
            self._requests[(code, "GET")] = 0
            self._latency[(code, "GET")] = _Histogram()

    def observe(self, method: str, code: int, seconds: float) -> None:
        key = (str(code), method)
        self._requests[key] = self._requests.get(key, 0) + 1
        histogram = self._latency.setdefault(key, _Histogram())
        histogram.bucket_counts[bisect.bisect_left(LATENCY_BUCKETS_SECONDS, seconds)] += 1
        histogram.total_seconds += seconds
        histogram.count += 1

    def requests_total(self, code: int | None = None) -> int:
        return sum(n for (c, _), n in self._requests.items() if code is None or c == str(code))

    def exposition(self, gauges: tuple[Gauge, ...] = ()) -> str:
        lines = [
            "# HELP http_requests_total Requests served, by status code and method.",
            "# TYPE http_requests_total counter",
        ]
        for (code, method), n in sorted(self._requests.items()):
            lines.append(f"http_requests_total{_labels({'code': code, 'method': method})} {n}")
        lines += [
            "# HELP http_request_duration_seconds Time from request received to response ready.",
            "# TYPE http_request_duration_seconds histogram",
        ]
        for (code, method), h in sorted(self._latency.items()):
            base = {"code": code, "method": method}
            cumulative = 0
            bounds = [*(f"{b:g}" for b in LATENCY_BUCKETS_SECONDS), "+Inf"]
            for bound, n in zip(bounds, h.bucket_counts, strict=True):
                cumulative += n
                labels = _labels({**base, "le": bound})
                lines.append(f"http_request_duration_seconds_bucket{labels} {cumulative}")
            lines.append(f"http_request_duration_seconds_sum{_labels(base)} {h.total_seconds!r}")
            lines.append(f"http_request_duration_seconds_count{_labels(base)} {h.count}")
        for gauge in gauges:
            lines += [f"# HELP {gauge.name} {gauge.help}", f"# TYPE {gauge.name} gauge"]
            lines.append(f"{gauge.name}{_labels(dict(gauge.labels))} {gauge.value!r}")
        return "\n".join(lines) + "\n"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

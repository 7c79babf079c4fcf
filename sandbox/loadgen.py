"""A steady-rate HTTP load generator that tells which version answered each request.

From Python: `report = await LoadGenerator(LoadSpec(url, rate=100, duration=10)).run()`, or start
`run()` as a task, read `snapshot()` while it runs, and `stop()` it. From a shell:
`python -m sandbox.loadgen URL --rate 100 --duration 10 -H 'x-canary: always' --cookie user=always`.

The schedule is open-loop (request i leaves at start + i/rate whatever the previous answers did), so
a slow or failing server shows up as errors and latency, not as a lower request rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

UNKNOWN_VERSION = "unknown"  # the body did not say (not the demo app, or no body)


@dataclass(frozen=True)
class LoadSpec:
    url: str
    rate: float  # requests per second
    duration: float | None = None  # seconds; None: until total is reached or stop() is called
    total: int | None = None  # stop after this many requests
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[tuple[str, str], ...] = ()
    timeout_seconds: float = 10.0
    keepalive: bool = True
    max_in_flight: int = 512  # beyond this the schedule waits rather than opening more connections

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate={self.rate!r} must be > 0 requests per second; set e.g. rate=100")
        if self.duration is not None and self.duration < 0:
            raise ValueError(f"duration={self.duration!r} must be >= 0 seconds or None (until stopped)")
        if self.total is not None and self.total < 0:
            raise ValueError(f"total={self.total!r} must be >= 0 requests or None (no limit)")


@dataclass(frozen=True)
class LoadReport:
    """Counts of answered requests by (version, status code), and requests that got no answer."""

    sent: int
    responses: Mapping[tuple[str, int], int] = field(default_factory=dict)
    connection_errors: int = 0  # refused, reset, timed out: no HTTP status at all
    elapsed_seconds: float = 0.0
    last_error: str = ""
    latencies_seconds: tuple[float, ...] = ()  # of answered requests, in completion order

    def latency_quantile(self, q: float) -> float | None:
        """The q-quantile (0..1) of answered requests' latency, nearest rank; None before any answer."""
        if not self.latencies_seconds:
            return None
        ordered = sorted(self.latencies_seconds)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    @property
    def by_code(self) -> dict[int, int]:
        counts: Counter[int] = Counter()
        for (_, code), n in self.responses.items():
            counts[code] += n
        return dict(counts)

    @property
    def by_version(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for (version, _), n in self.responses.items():
            counts[version] += n
        return dict(counts)

    @property
    def answered(self) -> int:
        return sum(self.responses.values())

    @property
    def failed(self) -> int:
        """Requests a user would call failed: no answer, or a 5xx."""
        server_errors = sum(n for (_, code), n in self.responses.items() if code >= 500)
        return self.connection_errors + server_errors

    def failed_by_version(self, version: str) -> int:
        return sum(n for (v, code), n in self.responses.items() if v == version and code >= 500)

    def share(self, version: str) -> float:
        """The fraction of answered requests that `version` served."""
        return self.by_version.get(version, 0) / self.answered if self.answered else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "answered": self.answered,
            "failed": self.failed,
            "connection_errors": self.connection_errors,
            "by_code": {str(k): v for k, v in sorted(self.by_code.items())},
            "by_version": dict(sorted(self.by_version.items())),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "latency_p50_seconds": self.latency_quantile(0.5),
            "latency_p99_seconds": self.latency_quantile(0.99),
            "last_error": self.last_error,
        }


class LoadGenerator:
    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self._stopped = asyncio.Event()
        self._responses: Counter[tuple[str, int]] = Counter()
        self._connection_errors = 0
        self._latencies: list[float] = []
        self._last_error = ""
        self._sent = 0
        self._started: float | None = None
        self._finished: float | None = None

    def stop(self) -> None:
        """End the run: no new requests; run() returns once the ones in flight are answered."""
        self._stopped.set()

    def snapshot(self) -> LoadReport:
        now = self._finished or time.monotonic()
        return LoadReport(
            sent=self._sent,
            responses=dict(self._responses),
            connection_errors=self._connection_errors,
            elapsed_seconds=now - self._started if self._started is not None else 0.0,
            last_error=self._last_error,
            latencies_seconds=tuple(self._latencies),
        )

    async def run(self) -> LoadReport:
        spec = self.spec
        connector = aiohttp.TCPConnector(limit=spec.max_in_flight, force_close=not spec.keepalive)
        timeout = aiohttp.ClientTimeout(total=spec.timeout_seconds)
        slots = asyncio.Semaphore(spec.max_in_flight)
        in_flight: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self._started = time.monotonic()
            while not self._done_sending():
                due = self._started + self._sent / spec.rate
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), max(0.0, due - time.monotonic()))
                if self._done_sending():
                    break
                await slots.acquire()
                self._sent += 1
                task = asyncio.create_task(self._one(session, slots))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.wait(in_flight)
        self._finished = time.monotonic()
        return self.snapshot()

    def _done_sending(self) -> bool:
        spec = self.spec
        if self._stopped.is_set():
            return True
        if spec.total is not None and self._sent >= spec.total:
            return True
        elapsed = time.monotonic() - (self._started or time.monotonic())
        return spec.duration is not None and elapsed >= spec.duration

    async def _one(self, session: aiohttp.ClientSession, slots: asyncio.Semaphore) -> None:
        started = time.monotonic()
        try:
            async with session.get(self.spec.url, headers=self._headers()) as response:
                body = await response.read()
            self._responses[(_version_of(body), response.status)] += 1
            self._latencies.append(time.monotonic() - started)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            self._connection_errors += 1
            self._last_error = f"{type(error).__name__}: {error}"
        finally:
            slots.release()

    def _headers(self) -> dict[str, str]:
        headers = dict(self.spec.headers)
        if self.spec.cookies:
            # A Cookie header rather than the session's jar: the jar drops cookies for IP hosts.
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.spec.cookies)
        return headers


def _version_of(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return UNKNOWN_VERSION
    version = payload.get("version") if isinstance(payload, dict) else None
    return str(version) if version is not None else UNKNOWN_VERSION


async def send(
    url: str,
    count: int,
    rate: float,
    headers: Mapping[str, str] | None = None,
    cookies: Mapping[str, str] | None = None,
) -> LoadReport:
    """Send `count` requests at `rate` per second and wait for every answer."""
    spec = LoadSpec(
        url=url, rate=rate, total=count,
        headers=tuple((headers or {}).items()), cookies=tuple((cookies or {}).items()),
    )
    return await LoadGenerator(spec).run()


def _pairs(values: Sequence[str], separator: str, flag: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition(separator)
        if not sep or not name.strip():
            raise SystemExit(f"{flag} {value!r}: expected NAME{separator}VALUE")
        pairs.append((name.strip(), rest.strip()))
    return tuple(pairs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (default 100)")
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    parser.add_argument("--total", type=int, default=None, help="stop after this many requests")
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--cookie", action="append", default=[], help="name=value, repeatable")
    parser.add_argument("--no-keepalive", action="store_true", help="a new connection per request")
    args = parser.parse_args(argv)
    spec = LoadSpec(
        url=args.url, rate=args.rate, duration=args.duration, total=args.total,
        headers=_pairs(args.header, ":", "--header"), cookies=_pairs(args.cookie, "=", "--cookie"),
        keepalive=not args.no_keepalive,
    )
    generator = LoadGenerator(spec)
    try:
        report = asyncio.run(generator.run())
    except KeyboardInterrupt:
        report = generator.snapshot()
    json.dump(report.to_json(), sys.stdout, indent=2)
    print()
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

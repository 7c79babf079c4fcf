"""The controller's token bucket: routine requests wait their turn; safety work never waits, and its
tokens are paid back by the routine requests after it."""

from __future__ import annotations

from canary.apiclient import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_routine_requests_wait_for_tokens_and_safety_work_does_not() -> None:
    clock = Clock()
    bucket = TokenBucket(qps=10, burst=2, clock=clock)
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]  # the burst
    assert round(bucket.reserve(), 6) == 0.1  # then one every 1/qps
    assert bucket.reserve(urgent=True) == 0.0  # safety work takes its token now, in debt
    assert round(bucket.reserve(), 6) == 0.3  # ... which the next routine request pays back
    clock.now = 10.0
    assert bucket.reserve() == 0.0  # refilled (never beyond the burst)
    assert bucket.reserve() == 0.0 and bucket.reserve() > 0


def test_no_limit_never_waits() -> None:
    bucket = TokenBucket(qps=0, burst=1)
    assert all(bucket.reserve() == 0.0 for _ in range(1000))

"""A reconcile that keeps failing the same way is logged once, then counted, not once per retry."""

from __future__ import annotations

import logging

import pytest

from adapters.base import RouterError
from canary.errorlog import REPORT_EVERY, RepeatedErrors


def test_a_repeated_error_is_logged_once_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    errors = RepeatedErrors(logging.getLogger("test.errors"))
    with caplog.at_level(logging.INFO, logger="test.errors"):
        for _ in range(REPORT_EVERY * 2 + 5):
            errors.failed(("ns", "web"), RecursionError("maximum recursion depth exceeded"))
        errors.succeeded(("ns", "web"))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["reconcile failed; retrying", "reconcile still failing", "reconcile still failing",
                        "reconcile recovered"]
    assert caplog.records[-1].after_failures == REPORT_EVERY * 2 + 5  # type: ignore[attr-defined]
    assert len(caplog.records[0].traceback) <= 4000  # type: ignore[attr-defined]


def test_expected_errors_carry_no_traceback_and_a_new_error_is_logged_again(caplog: pytest.LogCaptureFixture) -> None:
    errors = RepeatedErrors(logging.getLogger("test.errors2"))
    with caplog.at_level(logging.INFO, logger="test.errors2"):
        errors.failed("k", RouterError("ingress", "gone", "re-create it"))
        errors.failed("k", RouterError("ingress", "gone", "re-create it"))
        errors.failed("k", RouterError("service", "other", "fix"))
    assert len(caplog.records) == 2
    assert not hasattr(caplog.records[0], "traceback")

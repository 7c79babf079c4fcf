"""One full sandbox (API emulator with process pods, nginx, Prometheus, Alertmanager) and `weir run` per
test module: starting them costs several seconds, so the tests of a module share them and each test
uses its own example app (Deployment, Service, Ingress and host)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.stack import Stack
from tests.e2e_full.support import missing_binaries


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    missing = missing_binaries()
    if missing:  # the test modules' skipif says so first; this keeps the fixture itself safe to use
        pytest.skip(f"needs the real servers, missing: {', '.join(missing)}")
    with Stack() as running:
        yield running

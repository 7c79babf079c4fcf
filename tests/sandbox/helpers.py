"""Small helpers for the sandbox tests: raw HTTP against the emulator, waiting on conditions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import requests

T = TypeVar("T")


class Raw:
    """Plain HTTP to the emulator, for what the official client hides (status codes, Status bodies)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer anything"

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                **params: Any) -> requests.Response:
        headers = {"Content-Type": content_type}
        return self.session.request(method, self.url + path, json=body, headers=headers, params=params, timeout=10)


def wait_for(condition: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll until `condition()` is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def deployment(name: str, replicas: int = 2, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "example/app:1", "ports": [{"containerPort": 8080}],
                                 "env": [{"name": "VERSION", "value": "1"}]}
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}},
    }
    body["spec"].update(spec)
    return body

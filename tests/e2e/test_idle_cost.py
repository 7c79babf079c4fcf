"""An idle opted-in Deployment costs the API server nothing: with every release settled, the controller
makes no request over a window in which nothing changes (counted at the sandbox, by its User-Agent)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from kubernetes import client

from canary.apiclient import USER_AGENT
from sandbox.apiserver import SandboxThread
from tests.e2e.harness import App, ControllerProcess

pytestmark = pytest.mark.e2e
WINDOW_SECONDS = 6.0  # a measurement window, not a wait for something to happen


def controller_requests(sandbox: SandboxThread) -> dict[tuple[str, str], int]:
    body: dict[str, Any] = requests.get(f"{sandbox.url}/debug/requests", timeout=10).json()
    return {(row["verb"], row["resource"]): row["count"] for row in body["requests"]
            if row["user_agent"] == USER_AGENT}


def test_an_idle_controller_makes_no_api_request(sandbox: SandboxThread) -> None:
    api = sandbox.api_client()
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "idle"}})
    apps = [App(api, "idle", f"web-{i}").create() for i in range(5)]
    controller = ControllerProcess(sandbox.kubeconfig_path, "idle")
    try:
        for app in apps:
            app.wait_phase("Idle", timeout=30)
        before = controller_requests(sandbox)
        assert sum(before.values()) > 0, "the controller's requests are not being counted"
        time.sleep(WINDOW_SECONDS)
        after = controller_requests(sandbox)
        made = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
        assert made == {}, f"an idle controller made requests: {made}"
        # It still reacts at once: a change is seen through the watch, not by polling.
        apps[0].set_image("example/web:2")
        apps[0].wait_phase("Idle", timeout=30, revision=1)
    finally:
        controller.stop()

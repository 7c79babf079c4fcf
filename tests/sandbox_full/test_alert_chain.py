"""The whole alert chain on real servers: a demo-app process exports a metric, Prometheus scrapes it
(with the sandbox's namespace/pod/deployment labels) and evaluates the example rules, Alertmanager
delivers the alert to a loopback webhook."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.alertmanager_server import EXAMPLE_RULES, AlertmanagerServer, Webhook
from sandbox.prometheus_server import PrometheusServer
from tests.sandbox_full.conftest import TOKEN, DemoProcess, Receiver

pytestmark = pytest.mark.real


async def test_degraded_canary_pod_alerts_the_webhook_with_its_deployment(
    demo_apps: Callable[..., DemoProcess], receiver: Receiver, tmp_path: Path
) -> None:
    canary = demo_apps("v2", "web-6b7c-q9z8x", DEGRADED="true")
    primary = demo_apps("v1", "web-primary-5f4d-a1b2c")
    alertmanager = AlertmanagerServer(Webhook(receiver.url, bearer_token=TOKEN), workdir=tmp_path / "am")
    await asyncio.to_thread(alertmanager.start)
    prometheus = PrometheusServer(rule_files={"examples.yaml": EXAMPLE_RULES.read_text()},
                                  alertmanagers=[alertmanager.address], workdir=tmp_path / "prom")
    prometheus.write_targets("pods", [
        {"targets": [f"127.0.0.1:{canary.port}"],
         "labels": {"namespace": "demo", "deployment": "web", "pod": canary.pod}},
        {"targets": [f"127.0.0.1:{primary.port}"],
         "labels": {"namespace": "demo", "deployment": "web-primary", "pod": primary.pod}},
    ])
    prometheus.scrape_configs = [prometheus.file_sd_job("pods", "pods")]
    try:
        await asyncio.to_thread(prometheus.start)
        # Prometheus parses the hand-written exposition: every pre-declared series arrives, labelled.
        await asyncio.to_thread(prometheus.wait_for, 'http_requests_total{deployment="web",code="200"}', 30)
        _, payload = await receiver.first("firing")
        labels = payload["alerts"][0]["labels"]
        assert (labels["alertname"], labels["namespace"], labels["deployment"]) == ("DemoAppDegraded", "demo", "web")
        assert all(a["labels"]["deployment"] == "web" for _, p in receiver.calls for a in p["alerts"])
    finally:
        await asyncio.to_thread(prometheus.stop)
        await asyncio.to_thread(alertmanager.stop)

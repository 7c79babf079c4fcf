"""A real Alertmanager delivering to a loopback webhook, and the example alert rules under promtool."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandbox.alertmanager_server import EXAMPLE_RULES, Alert, AlertmanagerServer, Webhook
from tests.sandbox_full.conftest import TOKEN, Receiver, listening_addresses

pytestmark = pytest.mark.real


async def test_firing_and_resolved_alerts_reach_the_webhook_with_the_bearer_token(
    receiver: Receiver, tmp_path: Path
) -> None:
    server = AlertmanagerServer(Webhook(receiver.url, bearer_token=TOKEN), workdir=tmp_path / "am")
    await asyncio.to_thread(server.start)
    pid = server.pid
    try:
        assert pid is not None
        assert all(address.startswith("127.0.0.1:") for address in listening_addresses(pid))
        assert TOKEN not in (tmp_path / "am" / "alertmanager.yml").read_text()
        labels = {"alertname": "CanaryErrorRatioHigh", "namespace": "demo", "deployment": "web",
                  "severity": "page"}
        await asyncio.to_thread(server.post_alerts, [Alert(labels, {"summary": "errors"})])
        authorization, payload = await receiver.first("firing")
        assert authorization == f"Bearer {TOKEN}"
        assert payload["version"] == "4"
        assert [a["labels"] for a in payload["alerts"]] == [labels]

        ended = datetime.now(UTC) - timedelta(seconds=1)
        await asyncio.to_thread(server.post_alerts, [Alert(labels, ends_at=ended)])
        _, resolved = await receiver.first("resolved")
        assert resolved["alerts"][0]["labels"] == labels
    finally:
        await asyncio.to_thread(server.stop)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


RULES_TEST = {
    "rule_files": [str(EXAMPLE_RULES)],
    "evaluation_interval": "1s",
    "tests": [{
        "interval": "1s",
        "input_series": [
            {"series": 'http_requests_total{namespace="demo",deployment="web",pod="web-1",code="500",method="GET"}',
             "values": "0+5x40"},
            {"series": 'http_requests_total{namespace="demo",deployment="web",pod="web-1",code="200",method="GET"}',
             "values": "0+5x40"},
            {"series": 'http_requests_total{namespace="demo",deployment="web-primary",pod="p-1",code="200",'
                       'method="GET"}', "values": "0+10x40"},
            {"series": 'demoapp_degraded{namespace="demo",deployment="web",pod="web-1"}', "values": "1x40"},
            {"series": 'demoapp_degraded{namespace="demo",deployment="web-primary",pod="p-1"}', "values": "0x40"},
        ],
        "alert_rule_test": [
            {"eval_time": "20s", "alertname": "CanaryErrorRatioHigh", "exp_alerts": [{
                "exp_labels": {"severity": "page", "namespace": "demo", "deployment": "web"},
                "exp_annotations": {"summary": "demo/web answers 50% errors"}}]},
            {"eval_time": "20s", "alertname": "DemoAppDegraded", "exp_alerts": [{
                "exp_labels": {"severity": "page", "namespace": "demo", "deployment": "web"},
                "exp_annotations": {"summary": "demo/web runs degraded"}}]},
        ],
    }],
}


def test_example_rules_fire_for_the_failing_deployment_only(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus package (scripts/setup.sh installs it)"
    test_file = tmp_path / "rules_test.json"  # JSON is YAML
    test_file.write_text(json.dumps(RULES_TEST))
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

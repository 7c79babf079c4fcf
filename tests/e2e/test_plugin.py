"""`kubectl weir` against a kubeconfig: status table, promote and abort, and the plain-annotation equivalents."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import KubeTarget
from tests.e2e.harness import App, ControllerProcess, wait_for

pytestmark = pytest.mark.e2e
SLOW = {"router": "nginx", "stages": [{"canary": {"weights": [10, 50], "interval": "5m"}}]}


def plugin(kube: KubeTarget, *args: str) -> subprocess.CompletedProcess[str]:
    """Through kubectl's plugin mechanism when kubectl is installed, else the console script itself."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    kubectl = shutil.which("kubectl", path=env["PATH"])
    command = [kubectl, "weir"] if kubectl else [str(Path(bin_dir) / "kubectl-weir")]
    return subprocess.run([*command, *args, "--kubeconfig", str(kube.kubeconfig_path), "-n", kube.namespace],
                          capture_output=True, text=True, env=env, timeout=60)


def test_status_shows_phase_stage_weight_and_revision_then_promote(kube: KubeTarget,
                                                                  controller: ControllerProcess) -> None:
    app = App(kube.api_client, kube.namespace, "web").create(SLOW)
    app.wait_phase("Idle")
    app.set_image("example/web:2")
    wait_for(lambda: app.canary_weight() == 10, 30, "canary at 10%")
    table = plugin(kube, "status", "web")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:6] == ["NAMESPACE", "NAME", "PHASE", "STAGE", "WEIGHT", "REVISION"]
    assert row.split()[1:7] == ["web", "Progressing", "canary", "10%", "10%", "1"]
    as_json = json.loads(plugin(kube, "status", "-o", "json").stdout)
    assert as_json[0]["weight"] == 10 and as_json[0]["phase"] == "Progressing"
    promoted = plugin(kube, "promote", "web")
    assert promoted.returncode == 0, promoted.stderr
    app.wait_phase("Idle", timeout=20, revision=1)
    assert app.image("web-primary") == "example/web:2"


def test_abort_through_the_plugin_and_errors_for_a_missing_deployment(kube: KubeTarget,
                                                                     controller: ControllerProcess) -> None:
    app = App(kube.api_client, kube.namespace, "web").create(SLOW)
    app.wait_phase("Idle")
    app.set_image("example/web:2")
    wait_for(lambda: app.canary_weight() == 10, 30, "canary at 10%")
    assert plugin(kube, "abort", "web").returncode == 0
    app.wait_phase("RolledBack", timeout=20)
    missing = plugin(kube, "promote", "nope")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_lint_reports_the_field_and_the_fix(tmp_path: Path, kube: KubeTarget) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n"
        "    weir.dev/enabled: 'true'\n    weir.dev/rollout: |\n      router: ngnix\n"
        "spec:\n  template:\n    spec:\n      containers: [{name: web, image: 'web:latest'}]\n")
    result = subprocess.run([str(Path(sys.executable).parent / "kubectl-weir"), "lint", str(manifest)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "weir.dev/rollout.router" in result.stdout and "did you mean 'nginx'" in result.stdout


def test_undo_releases_the_previous_revision_through_the_ladder(kube: KubeTarget,
                                                               controller: ControllerProcess) -> None:
    app = App(kube.api_client, kube.namespace, "web").create()
    app.wait_phase("Idle")
    app.set_image("example/web:2")
    app.wait_phase("Idle", timeout=40, revision=1)
    assert plugin(kube, "undo", "web").returncode == 0
    state = app.wait_phase("Idle", timeout=40, revision=2)
    assert app.image("web") == "example/web:1" and app.image("web-primary") == "example/web:1"
    assert [r["number"] for r in state["history"]] == [0, 1, 2]
    assert plugin(kube, "undo", "web", "--to-revision", "1").returncode == 0
    app.wait_phase("Idle", timeout=40, revision=3)
    assert app.image("web-primary") == "example/web:2"
    refused = plugin(kube, "undo", "web", "--to-revision", "9")
    assert refused.returncode == 0
    wait_for(lambda: any(e["reason"] == "UndoRefused" for e in app.events()), 15, "UndoRefused event")

"""The pure core (the state machine and what it reads) depends on pure types only: it imports without
the Kubernetes client, so every branch stays a plain unit test."""

from __future__ import annotations

import subprocess
import sys

BLOCKED = "import sys; sys.modules['kubernetes'] = None; "


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKED + code], capture_output=True, text=True, timeout=60)


def test_the_state_machine_imports_without_the_kubernetes_package() -> None:
    done = run("import canary.machine, canary.state, canary.observation, canary.alerts, canary.annotated; "
               "print('imported')")
    assert done.returncode == 0, done.stderr
    assert "imported" in done.stdout


def test_the_blocking_trick_really_blocks_the_client() -> None:
    done = run("import canary.reconciler")
    assert done.returncode != 0 and "kubernetes" in done.stderr

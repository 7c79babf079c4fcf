"""`weir sandbox up --dir DIR`: runs in the foreground, writes DIR/kubeconfig once ready, stops on SIGTERM."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

import kubernetes
import pytest

from sandbox.cli import register

from .helpers import wait_for

# The same wiring as canary.cli's parser, without importing the controller's modules.
RUN_SANDBOX_CLI = (
    "import argparse, sys; from sandbox.cli import register; "
    "p = argparse.ArgumentParser(prog='weir'); register(p.add_subparsers(dest='command', required=True)); "
    "a = p.parse_args(sys.argv[1:]); sys.exit(a.handler(a))"
)


def test_parser_has_sandbox_up_and_demo() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    up = parser.parse_args(["sandbox", "up", "--dir", "/tmp/x", "--port", "0", "--ready-delay", "0.5"])
    assert (up.dir, up.port, up.ready_delay) == (Path("/tmp/x"), 0, 0.5)
    assert not up.full
    full = parser.parse_args(["sandbox", "up", "--dir", "d", "--full", "--webhook-url", "http://127.0.0.1:1/alerts"])
    assert full.full and full.webhook_url == "http://127.0.0.1:1/alerts"
    demo = parser.parse_args(["demo", "--timeout", "60"])
    assert demo.timeout == 60 and callable(demo.handler)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_sandbox_up_writes_kubeconfig_when_ready_and_exits_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    process = subprocess.Popen([sys.executable, "-c", RUN_SANDBOX_CLI, "sandbox", "up", "--dir", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        kubeconfig = tmp_path / "kubeconfig"
        wait_for(lambda: kubeconfig.exists() or process.poll() is not None, timeout=30, what="the kubeconfig")
        assert process.poll() is None, process.communicate()
        api_client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        listing = kubernetes.client.CoreV1Api(api_client).list_namespace()
        names = [n.metadata.name for n in listing.items if n.metadata]
        api_client.close()
        assert "default" in names
        process.send_signal(stop)
        out, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
        assert "stopped" in out and not kubeconfig.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

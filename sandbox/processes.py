"""What every real server the sandbox runs (Prometheus, Alertmanager) needs: start it in its own
session with its output in a log, tell "ready" from "died", quote its log, stop it by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path


def launch(command: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start `command` in a new session (so a shell's end does not signal it), output appended to the log."""
    with log_path.open("ab") as log:
        return subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def ready_or_dead(process: subprocess.Popen[bytes] | None, url: str) -> bool:
    """True once `url/-/ready` answers 200, or once the process has exited (the caller tells which)."""
    if process is None or process.poll() is not None:
        return True
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def request(url: str, *, what: str, service: str, error: type[Exception], data: bytes | None = None,
            headers: Mapping[str, str] | None = None) -> bytes:
    """GET (or POST when `data` is given) `url`; a refusal or no answer raises `error` saying which
    `service` failed to do `what`, with the server's own reason."""
    call = urllib.request.Request(url, data=data, headers=dict(headers or {}),
                                  method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(call, timeout=10) as answer:
            body: bytes = answer.read()
            return body
    except urllib.error.HTTPError as refused:
        detail = refused.read().decode(errors="replace").strip()
        raise error(f"{service} refused the {what} (HTTP {refused.code}): {detail}") from None
    except (urllib.error.URLError, OSError) as silent:
        raise error(f"{service} did not answer the {what}: {silent}") from None


def log_tail(log_path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM by PID, SIGKILL if it lingers past `timeout`."""
    if process is None or process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout)

"""Kubeconfig files and client configurations pointing at a sandbox API server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

SANDBOX_TOKEN = "weir-sandbox"  # the emulator accepts any bearer token; clients just need one to send


def kubeconfig(server_url: str, namespace: str = "default", name: str = "weir-sandbox") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server_url}}],
        "users": [{"name": name, "user": {"token": SANDBOX_TOKEN}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(path: str | os.PathLike[str], server_url: str, namespace: str = "default") -> Path:
    """Write atomically (temp file + rename), so a reader never sees half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    temp.write_text(yaml.safe_dump(kubeconfig(server_url, namespace), sort_keys=False))
    os.chmod(temp, 0o600)
    temp.replace(target)
    return target


def client_configuration(server_url: str) -> Any:
    """A `kubernetes.client.Configuration` for the sandbox (typed Any: the client ships no type hints)."""
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = server_url
    configuration.api_key = {"authorization": SANDBOX_TOKEN}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return configuration

"""Shared fixtures.

`kube` yields a `KubeTarget(api_client, kubeconfig_path, namespace)` with a fresh namespace:
- when WEIR_TEST_KUBECONFIG is set, on that real cluster (the namespace is deleted afterwards);
- otherwise on a sandbox API emulator started for the test (pods become ready after 0.2 s).

`sandbox` yields the running `SandboxThread` itself, for tests that need the emulator's knobs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.apiserver import SandboxThread


@dataclass(frozen=True)
class KubeTarget:
    api_client: Any  # kubernetes.client.ApiClient
    kubeconfig_path: Path
    namespace: str


@pytest.fixture
def sandbox() -> Iterator[SandboxThread]:
    with SandboxThread() as running:
        yield running


def _real_cluster(kubeconfig: str) -> Iterator[KubeTarget]:
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=kubeconfig)
    namespace = f"weir-test-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        yield KubeTarget(api_client, Path(kubeconfig), namespace)
    finally:
        core.delete_namespace(namespace)
        api_client.close()


@pytest.fixture
def kube() -> Iterator[KubeTarget]:
    real = os.environ.get("WEIR_TEST_KUBECONFIG")
    if real:
        yield from _real_cluster(real)
        return
    with SandboxThread() as running:
        api_client = running.api_client()
        namespace = f"weir-test-{uuid.uuid4().hex[:8]}"
        from kubernetes import client

        client.CoreV1Api(api_client).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        try:
            yield KubeTarget(api_client, running.kubeconfig_path, namespace)
        finally:
            api_client.close()

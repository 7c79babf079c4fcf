"""Fixtures shared by the end-to-end tests: a controller process and the example app, in the `kube`
fixture's fresh namespace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import KubeTarget
from tests.e2e.harness import App, ControllerProcess


@pytest.fixture
def controller(kube: KubeTarget) -> Iterator[ControllerProcess]:
    process = ControllerProcess(kube.kubeconfig_path, kube.namespace)
    yield process
    process.stop()


@pytest.fixture
def app(kube: KubeTarget) -> App:
    return App(kube.api_client, kube.namespace, "web")

"""Each router test gets the shared `kube` target (the API emulator, or the real cluster named by
WEIR_TEST_KUBECONFIG) with a fresh namespace holding the user's Deployment `web`, whose uid the
routers' ownerReferences must carry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from adapters.base import Route
from adapters.kube import deployments
from tests.adapters.routes import web_deployment, web_route
from tests.conftest import KubeTarget


@dataclass(frozen=True)
class Cluster:
    api: ApiClient
    kubeconfig: Path
    namespace: str
    route: Route  # for Deployment `web` in `namespace`, ingress `web`


@pytest.fixture
def cluster(kube: KubeTarget) -> Cluster:
    created = deployments(kube.api_client).create(kube.namespace, web_deployment())
    route = web_route(namespace=kube.namespace, uid=created["metadata"]["uid"])
    return Cluster(kube.api_client, kube.kubeconfig_path, kube.namespace, route)

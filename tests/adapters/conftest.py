"""A Kubernetes API emulator (sandbox.apiserver) per test module, and a fresh namespace per test holding
the user's Deployment `web`, whose uid the routers' ownerReferences must carry."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubernetes.client import ApiClient, CoreV1Api, V1Namespace, V1ObjectMeta

from adapters.base import Route
from adapters.kube import deployments
from tests.adapters.routes import web_deployment, web_route

_namespaces = itertools.count()


@dataclass(frozen=True)
class Cluster:
    api: ApiClient
    kubeconfig: str
    namespace: str
    route: Route  # for Deployment `web` in `namespace`, ingress `web`


@pytest.fixture(scope="module")
def emulator() -> Iterator[tuple[ApiClient, str]]:
    from sandbox.apiserver.server import SandboxThread

    # No workload controllers: routers only read and write Services, Ingresses and routes.
    with SandboxThread(workloads=False) as sandbox:
        api = sandbox.api_client()
        try:
            yield api, str(sandbox.kubeconfig_path)
        finally:
            api.close()


@pytest.fixture
def cluster(emulator: tuple[ApiClient, str]) -> Cluster:
    api, kubeconfig = emulator
    namespace = f"routers-{next(_namespaces)}"
    CoreV1Api(api).create_namespace(V1Namespace(metadata=V1ObjectMeta(name=namespace)))
    created = deployments(api).create(namespace, web_deployment())
    return Cluster(api, kubeconfig, namespace, web_route(namespace=namespace, uid=created["metadata"]["uid"]))

"""The shared `kube` fixture: a fresh namespace on the emulator (or on WEIR_TEST_KUBECONFIG's cluster)."""

from __future__ import annotations

from typing import Any

import kubernetes

from tests.conftest import KubeTarget

from .helpers import deployment, wait_for

client: Any = kubernetes.client  # plain-dict bodies, as the API allows (the stubs want model objects)


def test_kube_gives_an_empty_namespace_where_deployments_become_available(kube: KubeTarget) -> None:
    assert kube.kubeconfig_path.is_file()
    apps = client.AppsV1Api(kube.api_client)
    assert apps.list_namespaced_deployment(kube.namespace).items == []
    apps.create_namespaced_deployment(kube.namespace, deployment("web", replicas=1))

    def available() -> bool:
        status = apps.read_namespaced_deployment_status("web", kube.namespace).status
        return (status.available_replicas or 0) == 1

    wait_for(available, timeout=120, what="the Deployment to become available")

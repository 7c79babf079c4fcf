"""Installing the Gateway API and Istio route types in the emulator (schema-free: routers only need
the objects stored and served as written)."""

from __future__ import annotations

from kubernetes.client import ApiClient, ApiextensionsV1Api, V1CustomResourceDefinition
from kubernetes.client.exceptions import ApiException

from adapters import gateway_httproute, istio_virtualservice


def install_crd(api: ApiClient, group: str, version: str, plural: str, kind: str) -> None:
    body = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }
    try:
        definition = V1CustomResourceDefinition.model_validate(body)
        ApiextensionsV1Api(api).create_custom_resource_definition(definition)
    except ApiException as error:
        if error.status != 409:  # already installed
            raise


def install_httproutes(api: ApiClient) -> None:
    g = gateway_httproute
    install_crd(api, g.GROUP, g.VERSION, g.PLURAL, "HTTPRoute")


def install_virtualservices(api: ApiClient) -> None:
    i = istio_virtualservice
    install_crd(api, i.GROUP, i.VERSION, i.PLURAL, "VirtualService")

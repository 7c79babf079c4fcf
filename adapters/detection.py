"""Which router fits a Deployment when the user did not say: the one whose objects already route to
its Service, checked from the most specific to the least (DESIGN §1: opting in alone must work)."""

from __future__ import annotations

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from adapters import gateway_httproute, istio_virtualservice
from adapters.kube import Obj, ObjectCache, Resource, custom, ingresses
from adapters.nginx import find_ingress, ingresses_routing_to


def _list_if_installed(resource: Resource, namespace: str) -> list[Obj]:
    """Objects of a CRD-backed type, or none when its CRD is not installed (or we may not read it)."""
    try:
        return resource.list(namespace)
    except ApiException as error:
        if error.status in (403, 404):
            return []
        raise


def detect_router(api: ApiClient, namespace: str, name: str, cache: ObjectCache | None = None) -> str:
    """`nginx` if an Ingress routes to Service `name`, else `gateway` if an HTTPRoute does, else
    `istio` if a VirtualService does, else `service`. An HTTPRoute or VirtualService Weir has already
    split (it names `<name>-primary` instead) counts too, so detection is stable across a release."""
    sent_to = (name, f"{name}-primary")
    if find_ingress(ingresses_routing_to(ingresses(api, cache), namespace, name), name) is not None:
        return "nginx"
    httproutes = custom(api, gateway_httproute.GROUP, gateway_httproute.VERSION, gateway_httproute.PLURAL, cache)
    if any(
        gateway_httproute.references_service(item, service)
        for item in _list_if_installed(httproutes, namespace)
        for service in sent_to
    ):
        return "gateway"
    virtualservices = custom(api, istio_virtualservice.GROUP, istio_virtualservice.VERSION,
                             istio_virtualservice.PLURAL, cache)
    if any(
        istio_virtualservice.references_service(item, service, namespace)
        for item in _list_if_installed(virtualservices, namespace)
        for service in sent_to
    ):
        return "istio"
    return "service"

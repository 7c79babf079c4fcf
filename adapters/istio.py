"""The `istio` router: weights and header/cookie matches on the user's Istio VirtualService."""

from __future__ import annotations

from kubernetes.client import ApiClient

from adapters import istio_virtualservice as virtualservice
from adapters.base import Route
from adapters.kube import ObjectCache, custom
from adapters.split import RouteEdits, SplitRouter


def names(route: Route) -> virtualservice.Names:
    return virtualservice.Names(route.name, route.primary_service, route.canary_service, route.namespace)


EDITS = RouteEdits(
    kind="VirtualService",
    part="http route",
    references=lambda obj, route: virtualservice.references_service(obj, route.name, route.namespace),
    shares=lambda obj, route: virtualservice.shares_destinations(obj, names(route)),
    routed=lambda obj, route, routing: virtualservice.routed(obj, names(route), routing),
    restored=lambda obj, route: virtualservice.restored(obj, names(route)),
    is_split=lambda obj, route: virtualservice.is_split(obj, names(route)),
    parse=lambda obj, route: virtualservice.parse_routing(obj, names(route)),
)


class IstioRouter(SplitRouter):
    name = "istio"

    def __init__(self, api: ApiClient, cache: ObjectCache | None = None) -> None:
        super().__init__(api, custom(api, virtualservice.GROUP, virtualservice.VERSION, virtualservice.PLURAL, cache),
                         EDITS, cache)

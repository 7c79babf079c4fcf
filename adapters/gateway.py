"""The `gateway` router: weights and header/cookie matches on the user's Gateway API HTTPRoute."""

from __future__ import annotations

from kubernetes.client import ApiClient

from adapters import gateway_httproute as httproute
from adapters.kube import ObjectCache, custom
from adapters.split import RouteEdits, SplitRouter

EDITS = RouteEdits(
    kind="HTTPRoute",
    part="rule",
    references=lambda obj, route: httproute.references_service(obj, route.name),
    shares=lambda obj, route: httproute.shares_backends(obj, route.name),
    routed=lambda obj, route, routing: httproute.routed(
        obj, route.name, route.primary_service, route.canary_service, routing
    ),
    restored=lambda obj, route: httproute.restored(obj, route.name, route.primary_service, route.canary_service),
    is_split=lambda obj, route: httproute.is_split(obj, route.primary_service, route.canary_service),
    parse=lambda obj, route: httproute.parse_routing(obj, route.primary_service, route.canary_service),
)


class GatewayRouter(SplitRouter):
    name = "gateway"

    def __init__(self, api: ApiClient, cache: ObjectCache | None = None) -> None:
        super().__init__(api, custom(api, httproute.GROUP, httproute.VERSION, httproute.PLURAL, cache), EDITS, cache)

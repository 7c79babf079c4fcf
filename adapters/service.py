"""The `service` router: blue-green on a plain Kubernetes Service, with no ingress controller or mesh.

The apex Service selects either the primary's pods (weight 0) or the canary's (weight 100); one
selector write switches all new connections at once. Partial weights and request matches cannot be
expressed by a selector, so they are refused rather than approximated.
"""

from __future__ import annotations

from kubernetes.client import ApiClient

from adapters.backends import Backends
from adapters.base import Route, RouterError, Routing


class ServiceRouter:
    name = "service"

    def __init__(self, api: ApiClient) -> None:
        self._backends = Backends(api)

    def check(self, route: Route) -> None:
        self._backends.check(route)

    def supports(self, routing: Routing) -> bool:
        return routing.canary_weight in (0, 100) and not routing.matches

    def ensure(self, route: Route) -> None:
        self._backends.ensure(route)

    def set(self, route: Route, routing: Routing) -> None:
        if not self.supports(routing):
            raise RouterError(
                "router",
                f"router service can only send all traffic to one side (weight 0 or 100, no header or "
                f"cookie matches); asked for weight {routing.canary_weight} with {len(routing.matches)} "
                "match(es)",
                "use router nginx, gateway or istio for partial weights and matches, or a blue-green "
                "ladder (`canary: {weights: [100]}`)",
            )
        arm = route.canary_selector if routing.canary_weight == 100 else route.primary_selector
        self._backends.point_apex(route, dict(arm))

    def read(self, route: Route) -> Routing:
        selector = self._backends.apex_selector(route)
        if selector is None:
            raise RouterError(
                "service",
                f"Service {route.name} does not exist, so no traffic reaches either side",
                f"recreate Service {route.name} (or let Weir re-run its setup)",
            )
        if selector == dict(route.canary_selector):
            return Routing(canary_weight=100)
        if selector == dict(route.primary_selector):
            return Routing(canary_weight=0)
        raise RouterError(
            "service",
            f"Service {route.name} selects {selector}, which is neither the primary's pods "
            f"{dict(route.primary_selector)} nor the canary's {dict(route.canary_selector)}",
            f"let Weir re-run its setup (it repairs the selector), or restore Service {route.name}",
        )

    def finalize(self, route: Route) -> None:
        """Restore the apex's own selector and delete the Services Weir created. The caller makes sure
        the pods that selector picks (the user's Deployment) are ready first."""
        self._backends.remove(route)

"""The `service` router: blue-green on a plain Kubernetes Service, with no ingress controller or mesh.

The apex Service selects either the primary's pods (weight 0) or the canary's (weight 100); one
selector write switches all new connections at once. Partial weights and request matches cannot be
expressed by a selector, so they are refused rather than approximated.
"""

from __future__ import annotations

from kubernetes.client import ApiClient

from adapters.backends import Backends
from adapters.base import Missing, Observed, Route, RouteRead, RouterError, Routing
from adapters.kube import ObjectCache
from adapters.readback import read_safely, set_verified


class ServiceRouter:
    name = "service"

    def __init__(self, api: ApiClient, cache: ObjectCache | None = None) -> None:
        self._backends = Backends(api, cache)

    def check(self, route: Route) -> None:
        self._backends.check(route)

    def supports(self, routing: Routing) -> bool:
        return routing.canary_weight in (0, 100) and not routing.matches

    def ensure(self, route: Route) -> list[str]:
        repaired = self._backends.ensure(route)
        if repaired:  # whatever the apex selected before, nothing vouches for the canary now
            self._backends.point_apex(route, dict(route.primary_selector))
        return repaired

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

        def write(wanted: Routing) -> None:
            arm = route.canary_selector if wanted.canary_weight == 100 else route.primary_selector
            self._backends.point_apex(route, dict(arm))

        set_verified(self.name, lambda: self.read(route), write, routing)

    def read(self, route: Route) -> RouteRead:
        """Missing unless both backend Services and the taken-over apex are in place; then the apex's
        selector says it: the canary's pods are weight 100, the primary's weight 0."""
        return read_safely(lambda: self._look(route))

    def _look(self, route: Route) -> RouteRead:
        seen = self._backends.look(route)
        if seen.missing:
            return Missing(seen.missing[0])
        return Observed(Routing(canary_weight=100 if seen.apex_on(route.canary_selector) else 0))

    def finalize(self, route: Route) -> None:
        """Restore the apex's own selector and delete the Services Weir created. The caller makes sure
        the pods that selector picks (the user's Deployment) are ready first."""
        self._backends.remove(route)

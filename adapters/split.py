"""Routers that edit the user's own route object (a Gateway API HTTPRoute, an Istio VirtualService):
the apex backend becomes a weighted primary/canary pair plus canary-only rules for request matches.
The object-specific edits are pure functions (`RouteEdits`); this module does the I/O once for both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubernetes.client import ApiClient

from adapters.backends import Backends
from adapters.base import Route, RouterError, Routing
from adapters.kube import Obj, Resource


@dataclass(frozen=True)
class RouteEdits:
    kind: str  # "HTTPRoute" / "VirtualService", for messages
    references: Callable[[Obj, Route], bool]  # the object sends traffic to the apex Service
    shares: Callable[[Obj, Route], bool]  # ... in a rule that also sends to other backends
    routed: Callable[[Obj, Route, Routing], Obj]
    restored: Callable[[Obj, Route], Obj]
    is_split: Callable[[Obj, Route], bool]
    parse: Callable[[Obj, Route], Routing]


def unsupported_reason(routing: Routing) -> str | None:
    """What neither HTTPRoutes nor VirtualServices can express (they take any number of matches)."""
    if not 0 <= routing.canary_weight <= 100:
        return f"canary weight {routing.canary_weight} is outside 0..100"
    for match in routing.matches:
        if bool(match.header) == bool(match.cookie):
            return "each match needs exactly one of header or cookie"
        if match.value is not None and match.pattern is not None:
            return f"match on {match.header or match.cookie} sets both a value and a pattern"
        if match.cookie and match.pattern is not None:
            return f"cookie {match.cookie} takes a value, not a pattern"
    return None


class SplitRouter:
    name = ""

    def __init__(self, api: ApiClient, resource: Resource, edits: RouteEdits) -> None:
        self._objects = resource
        self._edits = edits
        self._backends = Backends(api)

    def _name(self, route: Route) -> str:
        if route.gateway_route:
            return route.gateway_route
        found = sorted(
            obj["metadata"]["name"]
            for obj in self._objects.list(route.namespace)
            if self._edits.references(obj, route) or self._edits.is_split(obj, route)
        )
        if not found:
            raise RouterError(
                "route",
                f"no {self._edits.kind} in namespace {route.namespace} sends traffic to Service {route.name}",
                f"point a {self._edits.kind} at Service {route.name}, or name it in `route:` of weir.dev/rollout",
            )
        return str(found[0])

    def _current(self, route: Route) -> Obj:
        name = self._name(route)
        current = self._objects.get(route.namespace, name)
        if current is None:
            raise RouterError(
                "route",
                f"{self._edits.kind} {route.namespace}/{name} does not exist",
                f"create it with a backend on Service {route.name}, or name the right one in `route:`",
            )
        return current

    def check(self, route: Route) -> None:
        current = self._current(route)
        name = current["metadata"]["name"]
        if not (self._edits.references(current, route) or self._edits.is_split(current, route)):
            raise RouterError(
                "route",
                f"{self._edits.kind} {name} sends no traffic to Service {route.name}",
                f"add a backend on Service {route.name} to {self._edits.kind} {name}, or name the one that has it",
            )
        if self._edits.shares(current, route):
            raise RouterError(
                "route",
                f"{self._edits.kind} {name} splits traffic between Service {route.name} and other backends",
                f"give Service {route.name} a rule of its own, so Weir's weights do not change the others' shares",
            )
        self._backends.check(route)

    def supports(self, routing: Routing) -> bool:
        return unsupported_reason(routing) is None

    def ensure(self, route: Route) -> None:
        """Backends first, then split the apex backend at weight 0 unless it is split already (a
        restarted controller must not move traffic back)."""
        self.check(route)
        self._backends.ensure(route)

        def split_once(current: Obj) -> Obj | None:
            if self._edits.is_split(current, route):
                return None
            return self._edits.routed(current, route, Routing())

        self._objects.update(route.namespace, self._name(route), split_once)

    def set(self, route: Route, routing: Routing) -> None:
        reason = unsupported_reason(routing)
        if reason is not None:
            raise RouterError("router", f"router {self.name} cannot route this: {reason}", "change the stage's matches")
        name = self._name(route)
        self._backends.hold_apex_on_primary(route)
        if (
            self._objects.update(route.namespace, name, lambda current: self._edits.routed(current, route, routing))
            is None
        ):
            raise RouterError(
                "route",
                f"{self._edits.kind} {route.namespace}/{name} does not exist",
                f"create it with a backend on Service {route.name}, or name the right one in `route:`",
            )

    def read(self, route: Route) -> Routing:
        if self._backends.apex_on_canary(route):
            return Routing(canary_weight=100)  # in-cluster clients of the apex reach the canary
        return self._edits.parse(self._current(route), route)

    def finalize(self, route: Route) -> None:
        """Put the apex backend back in the user's object, then hand the apex Service back."""
        try:
            name = self._name(route)
        except RouterError:
            name = ""  # the route object is gone: nothing of ours is left in it
        if name:
            self._objects.update(route.namespace, name, lambda current: self._edits.restored(current, route))
        self._backends.remove(route)

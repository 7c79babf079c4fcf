"""Routers that edit the user's own route object (a Gateway API HTTPRoute, an Istio VirtualService):
the apex backend becomes a weighted primary/canary pair plus canary-only rules for request matches.
The object-specific edits are pure functions (`RouteEdits`); this module does the I/O once for both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubernetes.client import ApiClient

from adapters.backends import Backends
from adapters.base import Missing, Observed, Route, RouteRead, RouterError, Routing
from adapters.kube import Obj, ObjectCache, Resource
from adapters.readback import read_safely, set_verified


@dataclass(frozen=True)
class RouteEdits:
    kind: str  # "HTTPRoute" / "VirtualService", for messages
    part: str  # what Weir splits in it: "rule" / "http route", for messages
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

    def __init__(self, api: ApiClient, resource: Resource, edits: RouteEdits, cache: ObjectCache | None = None) -> None:
        self._objects = resource
        self._edits = edits
        self._backends = Backends(api, cache)

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

    def split_what(self, route: Route, name: str) -> str:
        """How a read reports (and ensure restores) the apex backend split into primary and canary."""
        return f"{self._edits.kind} {name} {self._edits.part} splitting {route.primary_service}/{route.canary_service}"

    def ensure(self, route: Route) -> list[str]:
        """Backends first, then split the apex backend at weight 0 unless it is split already (a
        restarted controller must not move traffic back). If anything had to be (re)created or
        repaired, all traffic goes to the primary."""
        self.check(route)
        repaired = self._backends.ensure(route)
        name = self._name(route)
        split_now = False

        def split_once(current: Obj) -> Obj | None:
            nonlocal split_now
            split_now = not self._edits.is_split(current, route)
            if not split_now and not repaired:
                return None
            return self._edits.routed(current, route, Routing())

        self._objects.update(route.namespace, name, split_once)
        if split_now:
            repaired.append(self.split_what(route, name))
        if repaired:
            self._backends.hold_apex_on_primary(route)
        return repaired

    def set(self, route: Route, routing: Routing) -> None:
        reason = unsupported_reason(routing)
        if reason is not None:
            raise RouterError("router", f"router {self.name} cannot route this: {reason}", "change the stage's matches")

        def write(wanted: Routing) -> None:
            name = self._name(route)
            self._backends.hold_apex_on_primary(route)
            if (
                self._objects.update(route.namespace, name, lambda current: self._edits.routed(current, route, wanted))
                is None
            ):
                raise RouterError(
                    "route",
                    f"{self._edits.kind} {route.namespace}/{name} does not exist",
                    f"create it with a backend on Service {route.name}, or name the right one in `route:`",
                )

        set_verified(self.name, lambda: self.read(route), write, routing)

    def read(self, route: Route) -> RouteRead:
        """Missing unless the backend Services, the taken-over apex and the user's object with Weir's
        split of the apex backend are all in place. An apex on the canary's pods reads as weight 100
        (in-cluster clients of the apex reach the canary); otherwise the object's weights and
        canary-only rules say it."""
        return read_safely(lambda: self._look(route))

    def _look(self, route: Route) -> RouteRead:
        seen = self._backends.look(route)
        if seen.missing:
            return Missing(seen.missing[0])
        try:
            name = self._name(route)
        except RouterError:
            return Missing(f"{self._edits.kind} routing to Service {route.name}")
        current = self._objects.get(route.namespace, name)
        if current is None:
            return Missing(f"{self._edits.kind} {name}")
        if not self._edits.is_split(current, route):
            return Missing(self.split_what(route, name))
        if seen.apex_on(route.canary_selector):
            return Observed(Routing(canary_weight=100))
        return Observed(self._edits.parse(current, route))

    def finalize(self, route: Route) -> None:
        """Put the apex backend back in the user's object, then hand the apex Service back."""
        try:
            name = self._name(route)
        except RouterError:
            name = ""  # the route object is gone: nothing of ours is left in it
        if name:
            self._objects.update(route.namespace, name, lambda current: self._edits.restored(current, route))
        self._backends.remove(route)

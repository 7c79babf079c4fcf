"""The `nginx` router: ingress-nginx canary annotations on a `<ingress>-canary` Ingress Weir owns.

The user's Ingress keeps routing to the apex Service (pointed at the primary); the canary Ingress, a
copy of its rules aimed at `<name>-canary`, takes the share its annotations say.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client import ApiClient

from adapters import nginx_ingress as rendering
from adapters.backends import Backends
from adapters.base import Route, RouterError, Routing
from adapters.kube import Obj, ingresses
from adapters.ownership import RELEASE_OF_LABEL, is_managed, refuse_foreign

FOUND_TTL_SECONDS = 30.0


def find_ingress(candidates: list[Obj], service: str) -> str | None:
    """The first Ingress (by name) that routes to `service` and is not itself a canary."""
    for ingress in sorted(candidates, key=lambda item: item["metadata"]["name"]):
        annotations = ingress["metadata"].get("annotations") or {}
        if annotations.get(rendering.CANARY) != "true" and rendering.routes_to_service(ingress, service):
            return str(ingress["metadata"]["name"])
    return None


class NginxRouter:
    name = "nginx"

    def __init__(self, api: ApiClient) -> None:
        self._ingresses = ingresses(api)
        self._backends = Backends(api)
        # Which Ingress routes to a Service, found by listing; remembered briefly because `read` and
        # `set` run on every reconcile, while `check` and `ensure` always look again.
        self._found: dict[tuple[str, str], tuple[float, str]] = {}

    def _ingress_name(self, route: Route, fresh: bool = True) -> str:
        if route.ingress:
            return route.ingress
        key = (route.namespace, route.name)
        remembered = self._found.get(key)
        if not fresh and remembered is not None and time.monotonic() - remembered[0] < FOUND_TTL_SECONDS:
            return remembered[1]
        found = find_ingress(self._ingresses.list(route.namespace), route.name)
        if found is None:
            raise RouterError(
                "ingress",
                f"no Ingress in namespace {route.namespace} routes to Service {route.name}",
                f"create an Ingress with a backend on Service {route.name}, or set `ingress:` in "
                "weir.dev/rollout, or use `router: service`",
            )
        self._found[key] = (time.monotonic(), found)
        return found

    def _user_ingress(self, route: Route) -> dict[str, Any]:
        name = self._ingress_name(route)
        ingress = self._ingresses.get(route.namespace, name)
        if ingress is None:
            raise RouterError(
                "ingress",
                f"Ingress {route.namespace}/{name} does not exist",
                f"create Ingress {name} routing to Service {route.name}, or name the right one in "
                "`ingress:` of weir.dev/rollout",
            )
        if not rendering.routes_to_service(ingress, route.name):
            raise RouterError(
                "ingress",
                f"Ingress {name} has no backend on Service {route.name}",
                f"point a path of Ingress {name} at Service {route.name}, or name the Ingress that does",
            )
        return ingress

    def check(self, route: Route) -> None:
        user = self._user_ingress(route)
        canary_name = rendering.canary_ingress_name(user["metadata"]["name"])
        refuse_foreign(self._ingresses.get(route.namespace, canary_name), "ingress", "Ingress", canary_name)
        spec = rendering.canary_spec(user.get("spec") or {}, route.name, route.canary_service)
        rival = rendering.competing_canary(self._ingresses.list(route.namespace), canary_name, spec)
        if rival is not None:
            raise RouterError(
                "ingress",
                f"Ingress {rival} is already a canary for a host and path of Ingress {user['metadata']['name']}, "
                "and ingress-nginx applies only one canary per host and path",
                f"delete Ingress {rival} (or remove its canary annotations) before Weir manages Service {route.name}",
            )
        self._backends.check(route)

    def supports(self, routing: Routing) -> bool:
        return rendering.unsupported_reason(routing) is None

    def ensure(self, route: Route) -> None:
        self.check(route)
        self._backends.ensure(route)
        user = self._user_ingress(route)
        canary_name = rendering.canary_ingress_name(user["metadata"]["name"])
        if self._ingresses.get(route.namespace, canary_name) is None:
            self._ingresses.create(route.namespace, rendering.canary_ingress(user, route))
        else:
            self._ingresses.update(
                route.namespace,
                canary_name,
                lambda existing: rendering.sync_canary_ingress(existing, user, route),
            )

    def _canary_name(self, route: Route) -> str:
        return rendering.canary_ingress_name(self._ingress_name(route, fresh=False))

    def set(self, route: Route, routing: Routing) -> None:
        reason = rendering.unsupported_reason(routing)
        if reason is not None:
            raise RouterError("router", f"router nginx cannot route this: {reason}", "change the stage's matches")

        canary_name = self._canary_name(route)
        self._backends.hold_apex_on_primary(route)

        def route_as_asked(ingress: Obj) -> Obj:
            refuse_foreign(ingress, "ingress", "Ingress", canary_name)
            metadata = ingress["metadata"]
            metadata["annotations"] = rendering.with_routing(metadata.get("annotations") or {}, routing)
            return ingress

        if self._ingresses.update(route.namespace, canary_name, route_as_asked) is None:
            raise RouterError(
                "ingress",
                f"the canary Ingress {canary_name} does not exist",
                "let Weir re-run its setup (ensure) before changing traffic",
            )

    def read(self, route: Route) -> Routing:
        if self._backends.apex_on_canary(route):
            return Routing(canary_weight=100)  # the user's Ingress reaches the canary through the apex
        canary = self._ingresses.get(route.namespace, self._canary_name(route))
        if canary is None:
            return Routing()
        return rendering.parse_routing(canary["metadata"].get("annotations") or {})

    def finalize(self, route: Route) -> None:
        """Delete the canary Ingress (all traffic then follows the user's Ingress to the apex), then
        hand the apex back. The caller makes sure the apex's own pods are ready first."""
        # Found by label, not by the user's Ingress: that one may be gone or renamed by now.
        for ingress in self._ingresses.list(route.namespace):
            labels = ingress["metadata"].get("labels") or {}
            if is_managed(ingress) and labels.get(RELEASE_OF_LABEL) == route.name:
                self._ingresses.delete(route.namespace, ingress["metadata"]["name"])
        self._backends.remove(route)

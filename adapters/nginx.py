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
from adapters.base import Missing, Observed, Route, RouteRead, RouterError, Routing
from adapters.kube import Obj, ObjectCache, Resource, ingresses
from adapters.ownership import RELEASE_OF_LABEL, is_managed, refuse_foreign
from adapters.readback import read_safely, set_verified

FOUND_TTL_SECONDS = 30.0


def find_ingress(candidates: list[Obj], service: str) -> str | None:
    """The first Ingress (by name) that routes to `service` and is not itself a canary."""
    for ingress in sorted(candidates, key=lambda item: item["metadata"]["name"]):
        if not rendering.is_canary(ingress) and rendering.routes_to_service(ingress, service):
            return str(ingress["metadata"]["name"])
    return None


def ingress_what(name: str) -> str:
    return f"Ingress {name}"


def marking_what(canary_name: str) -> str:
    return f"annotation {rendering.CANARY}=true on Ingress {canary_name}"


BACKEND_INDEX = "backend-service"  # Ingress cache index: the Services an Ingress routes to
CANARY_HOST_INDEX = "canary-host"  # Ingress cache index: the hosts a canary Ingress serves
INGRESS_INDEXES = {BACKEND_INDEX: rendering.backend_services, CANARY_HOST_INDEX: rendering.canary_hosts}


def ingresses_routing_to(ingresses: Resource, namespace: str, service: str) -> list[Obj]:
    """The Ingresses that may route to `service`: looked up in the cache's index when there is one (a
    namespace-wide scan per reconcile is what made 1,000 Deployments cost a core), else all of them."""
    indexed = ingresses.find(namespace, BACKEND_INDEX, service)
    return indexed if indexed is not None else ingresses.list(namespace)


class NginxRouter:
    name = "nginx"

    def __init__(self, api: ApiClient, cache: ObjectCache | None = None) -> None:
        self._ingresses = ingresses(api, cache)
        self._backends = Backends(api, cache)
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
        found = find_ingress(ingresses_routing_to(self._ingresses, route.namespace, route.name), route.name)
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
        rival = rendering.competing_canary(self._canaries_on(route.namespace, spec), canary_name, spec)
        if rival is not None:
            raise RouterError(
                "ingress",
                f"Ingress {rival} is already a canary for a host and path of Ingress {user['metadata']['name']}, "
                "and ingress-nginx applies only one canary per host and path",
                f"delete Ingress {rival} (or remove its canary annotations) before Weir manages Service {route.name}",
            )
        self._backends.check(route)

    def _canaries_on(self, namespace: str, spec: Obj) -> list[Obj]:
        hosts = {host for host, _ in rendering.host_paths(spec)}
        found: dict[str, Obj] = {}
        for host in hosts:
            indexed = self._ingresses.find(namespace, CANARY_HOST_INDEX, host)
            if indexed is None:
                return self._ingresses.list(namespace)
            found.update((item["metadata"]["name"], item) for item in indexed)
        return list(found.values())

    def supports(self, routing: Routing) -> bool:
        return rendering.unsupported_reason(routing) is None

    def ensure(self, route: Route) -> list[str]:
        """Backends, then the canary Ingress: created at weight 0, or brought back in line with the
        user's Ingress. If anything had to be (re)created or repaired, all traffic goes to the primary."""
        self.check(route)
        repaired = self._backends.ensure(route)
        user = self._user_ingress(route)
        canary_name = rendering.canary_ingress_name(user["metadata"]["name"])
        existing = self._ingresses.get(route.namespace, canary_name)
        if existing is None:
            self._ingresses.create(route.namespace, rendering.canary_ingress(user, route))
            repaired.append(ingress_what(canary_name))
        elif not rendering.is_canary(existing):
            repaired.append(marking_what(canary_name))
        if existing is not None:
            reset = bool(repaired)

            def synced(current: Obj) -> Obj:
                current = rendering.sync_canary_ingress(current, user, route)
                if reset:
                    annotations = current["metadata"]["annotations"]
                    current["metadata"]["annotations"] = rendering.with_routing(annotations, Routing())
                return current

            self._ingresses.update(route.namespace, canary_name, synced)
        if repaired:
            self._backends.hold_apex_on_primary(route)
        return repaired

    def _canary_name(self, route: Route) -> str:
        return rendering.canary_ingress_name(self._ingress_name(route, fresh=False))

    def set(self, route: Route, routing: Routing) -> None:
        reason = rendering.unsupported_reason(routing)
        if reason is not None:
            raise RouterError("router", f"router nginx cannot route this: {reason}", "change the stage's matches")

        def write(wanted: Routing) -> None:
            canary_name = self._canary_name(route)
            self._backends.hold_apex_on_primary(route)

            def route_as_asked(ingress: Obj) -> Obj:
                refuse_foreign(ingress, "ingress", "Ingress", canary_name)
                metadata = ingress["metadata"]
                metadata["annotations"] = rendering.with_routing(metadata.get("annotations") or {}, wanted)
                return ingress

            if self._ingresses.update(route.namespace, canary_name, route_as_asked) is None:
                raise RouterError(
                    "ingress",
                    f"the canary Ingress {canary_name} does not exist",
                    "let Weir re-run its setup (ensure) before changing traffic",
                )

        set_verified(self.name, lambda: self.read(route), write, routing)

    def read(self, route: Route) -> RouteRead:
        """Missing unless the backend Services, the taken-over apex, the user's Ingress and the canary
        Ingress (marked as a canary) are all in place. An apex on the canary's pods reads as weight
        100: the user's Ingress reaches the canary through it. Otherwise the canary Ingress's
        annotations say it."""
        return read_safely(lambda: self._look(route))

    def _look(self, route: Route) -> RouteRead:
        seen = self._backends.look(route)
        if seen.missing:
            return Missing(seen.missing[0])
        try:
            user_name = self._ingress_name(route, fresh=False)
        except RouterError:
            return Missing(f"Ingress routing to Service {route.name}")
        if self._ingresses.get(route.namespace, user_name) is None:
            return Missing(ingress_what(user_name))
        canary_name = rendering.canary_ingress_name(user_name)
        canary = self._ingresses.get(route.namespace, canary_name)
        if canary is None:
            return Missing(ingress_what(canary_name))
        if not rendering.is_canary(canary):
            return Missing(marking_what(canary_name))
        if seen.apex_on(route.canary_selector):
            return Observed(Routing(canary_weight=100))
        return Observed(rendering.parse_routing(canary["metadata"].get("annotations") or {}))

    def finalize(self, route: Route) -> None:
        """Delete the canary Ingress (all traffic then follows the user's Ingress to the apex), then
        hand the apex back. The caller makes sure the apex's own pods are ready first."""
        # Found by label, not by the user's Ingress: that one may be gone or renamed by now.
        for ingress in self._ingresses.list(route.namespace):
            labels = ingress["metadata"].get("labels") or {}
            if is_managed(ingress) and labels.get(RELEASE_OF_LABEL) == route.name:
                self._ingresses.delete(route.namespace, ingress["metadata"]["name"])
        self._backends.remove(route)

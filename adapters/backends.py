"""The Services every router sends traffic through (DESIGN §2): `<name>-primary` and `<name>-canary`
select one workload each, and the apex Service `<name>` (what clients and the user's Ingress use)
is pointed at the primary on take-over. The apex's own selector is remembered in an annotation on
it, so that opting out gives it back exactly."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient

from adapters.base import Route, RouterError
from adapters.kube import Obj, ObjectCache, deployments, services
from adapters.ownership import claim, is_managed, refuse_foreign

ORIGINAL_SELECTOR = "weir.dev/original-selector"


def service_ports(ports: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Ports for a Service Weir writes: nodePort dropped (it is unique cluster-wide, so a copy would
    be rejected) and the API server's defaults filled in, so that a re-read compares equal."""
    copied = []
    for port in ports:
        entry: dict[str, Any] = {
            "port": port["port"],
            "protocol": port.get("protocol") or "TCP",
            "targetPort": port.get("targetPort") or port["port"],
        }
        for optional in ("name", "appProtocol"):
            if port.get(optional):
                entry[optional] = port[optional]
        copied.append(entry)
    return copied


def ports_from_deployment(deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Service ports for every container port of the Deployment's pod template."""
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
    declared = [port for container in containers or [] for port in container.get("ports") or []]
    ports = []
    for port in declared:
        number = port["containerPort"]
        # A Service with several ports must name each one.
        name = port.get("name") or (f"port-{number}" if len(declared) > 1 else None)
        entry = {"port": number, "targetPort": number, "protocol": port.get("protocol") or "TCP"}
        ports.append({**entry, "name": name} if name else entry)
    return ports


def selector_text(selector: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(selector.items())), separators=(",", ":"))


def backend_service(route: Route, name: str, selector: Mapping[str, str], ports: list[dict[str, Any]]) -> Obj:
    """A Service Weir owns that selects one workload (`<name>-primary` or `<name>-canary`)."""
    service: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": route.namespace},
        "spec": {"type": "ClusterIP", "selector": dict(selector), "ports": ports},
    }
    return claim(service, route)


def new_apex_service(route: Route, ports: list[dict[str, Any]]) -> Obj:
    """The apex Service when the user has none: Weir's own, pointing at the primary. Its "original"
    selector is the user's Deployment's pods, where traffic goes once Weir lets go."""
    apex = backend_service(route, route.name, dict(route.primary_selector), ports)
    apex["metadata"]["annotations"] = {ORIGINAL_SELECTOR: selector_text(dict(route.canary_selector))}
    return apex


def take_over_apex(apex: Obj, route: Route) -> Obj:
    """Point a user's apex at the primary the first time, remembering its selector. Later calls only
    repair a selector that selects neither arm (e.g. re-applied by a user), never move traffic."""
    metadata = apex.setdefault("metadata", {})
    annotations = metadata.setdefault("annotations", {}) or {}
    metadata["annotations"] = annotations
    spec = apex.setdefault("spec", {})
    selector = spec.get("selector") or {}
    arms = (dict(route.primary_selector), dict(route.canary_selector))
    if ORIGINAL_SELECTOR not in annotations:
        annotations[ORIGINAL_SELECTOR] = selector_text(selector)
        spec["selector"] = dict(route.primary_selector)
    elif selector not in arms:
        spec["selector"] = dict(route.primary_selector)
    return apex


def release_apex(apex: Obj) -> Obj | None:
    """Give the apex its remembered selector back and forget it; None if Weir never took it over."""
    annotations = (apex.get("metadata") or {}).get("annotations") or {}
    if ORIGINAL_SELECTOR not in annotations:
        return None
    apex["spec"]["selector"] = json.loads(annotations.pop(ORIGINAL_SELECTOR))
    return apex


def labels_text(selector: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))


def service_what(name: str) -> str:
    """How a read reports (and ensure re-creates) an absent Service."""
    return f"Service {name}"


def backend_selector_what(name: str, selector: Mapping[str, str]) -> str:
    return f"selector {labels_text(selector)} of Service {name}"


def apex_what(route: Route) -> str:
    return f"Service {route.name} selecting the pods of {route.primary_service} or {route.canary_service}"


def selector_of(service: Mapping[str, Any]) -> dict[str, str]:
    return dict((service.get("spec") or {}).get("selector") or {})


def apex_in_place(apex: Mapping[str, Any], route: Route) -> bool:
    """Taken over by Weir (it remembers the user's selector) and selecting one of the two arms."""
    annotations = (apex.get("metadata") or {}).get("annotations") or {}
    arms = (dict(route.primary_selector), dict(route.canary_selector))
    return ORIGINAL_SELECTOR in annotations and selector_of(apex) in arms


@dataclass(frozen=True)
class ServicesSeen:
    """The three Services of one route as read now."""

    missing: tuple[str, ...]  # what is absent or mis-pointed, in the words of `Missing.what`
    apex_selector: dict[str, str]  # {} when there is no apex

    def apex_on(self, selector: tuple[tuple[str, str], ...]) -> bool:
        return not self.missing and self.apex_selector == dict(selector)


def sync_backend(existing: Obj, wanted: Obj, route: Route) -> Obj:
    """Bring a Service Weir owns back to `wanted`, keeping server-set fields (clusterIP, ...)."""
    claim(existing, route)
    existing.setdefault("spec", {}).update({"selector": wanted["spec"]["selector"], "ports": wanted["spec"]["ports"]})
    return existing


class Backends:
    """The primary/canary/apex Services of one API server, shared by every router."""

    def __init__(self, api: ApiClient, cache: ObjectCache | None = None) -> None:
        self._services = services(api, cache)
        self._deployments = deployments(api, cache)

    def check(self, route: Route) -> None:
        """Everything `ensure` needs is there and nothing in its way belongs to someone else."""
        for name in (route.primary_service, route.canary_service):
            refuse_foreign(self._services.get(route.namespace, name), "service", "Service", name)
        apex = self._services.get(route.namespace, route.name)
        if apex is None:
            if not self._ports_for_new_apex(route):
                raise RouterError(
                    "ports",
                    f"there is no Service {route.name} and Deployment {route.owner.name} declares no "
                    "container ports to create it from",
                    f"create Service {route.name}, or add `ports:` to the Deployment's containers",
                )
        elif not (apex.get("spec") or {}).get("selector"):
            raise RouterError(
                "service",
                f"Service {route.name} has no selector (type {apex['spec'].get('type', 'ClusterIP')}), so "
                "Weir cannot point it at a workload",
                f"give Service {route.name} a pod selector, or use a router that does not need it",
            )

    def _ports_for_new_apex(self, route: Route) -> list[dict[str, Any]]:
        deployment = self._deployments.get(route.namespace, route.owner.name)
        return ports_from_deployment(deployment) if deployment else []

    def look(self, route: Route) -> ServicesSeen:
        """Both backend Services exist and select their arm, and the apex exists, is taken over and
        selects one of the arms; each that is not so is named. API errors propagate."""
        missing = []
        for name, selector in self._arms(route):
            service = self._services.get(route.namespace, name)
            if service is None:
                missing.append(service_what(name))
            elif selector_of(service) != dict(selector):
                missing.append(backend_selector_what(name, dict(selector)))
        apex = self._services.get(route.namespace, route.name)
        if apex is None:
            missing.append(service_what(route.name))
        elif not apex_in_place(apex, route):
            missing.append(apex_what(route))
        return ServicesSeen(tuple(missing), selector_of(apex) if apex else {})

    @staticmethod
    def _arms(route: Route) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
        return (route.primary_service, route.primary_selector), (route.canary_service, route.canary_selector)

    def ensure(self, route: Route) -> list[str]:
        """Create or repair both backend Services, then take the apex over (the step that moves
        traffic comes last, once its targets exist). Returns what was (re)created or repaired, as
        `look` names it."""
        self.check(route)
        apex = self._services.get(route.namespace, route.name)
        ports = service_ports(apex["spec"].get("ports") or []) if apex else self._ports_for_new_apex(route)
        repaired = []
        for name, selector in self._arms(route):
            wanted = backend_service(route, name, dict(selector), ports)
            repaired += self._create_or_sync(route, wanted)
        if apex is None:
            self._services.create(route.namespace, new_apex_service(route, ports))
            repaired.append(service_what(route.name))
        else:
            if not apex_in_place(apex, route):
                repaired.append(apex_what(route))
            self._services.update(route.namespace, route.name, lambda old: take_over_apex(old, route))
        return repaired

    def _create_or_sync(self, route: Route, wanted: Obj) -> list[str]:
        name = wanted["metadata"]["name"]
        existing = self._services.get(route.namespace, name)
        if existing is None:
            self._services.create(route.namespace, wanted)
            return [service_what(name)]
        self._services.update(route.namespace, name, lambda current: sync_backend(current, wanted, route))
        selector = wanted["spec"]["selector"]
        return [] if selector_of(existing) == selector else [backend_selector_what(name, selector)]

    def point_apex(self, route: Route, selector: Mapping[str, str]) -> None:
        """Send all of the apex's traffic to the pods `selector` picks, in one write."""

        def point(apex: Obj) -> Obj:
            apex.setdefault("spec", {})["selector"] = dict(selector)
            return apex

        if self._services.update(route.namespace, route.name, point) is None:
            raise RouterError(
                "service",
                f"Service {route.name} does not exist",
                f"recreate Service {route.name} (or let Weir re-run its setup) before changing traffic",
            )

    def hold_apex_on_primary(self, route: Route) -> None:
        """For routers that split traffic in front of the apex: the apex serves the primary only."""

        def on_primary(apex: Obj) -> Obj | None:
            annotations = (apex.get("metadata") or {}).get("annotations") or {}
            if ORIGINAL_SELECTOR not in annotations:
                return None  # not taken over (yet): ensure's job, not set's
            apex.setdefault("spec", {})["selector"] = dict(route.primary_selector)
            return apex

        self._services.update(route.namespace, route.name, on_primary)

    def apex_selector(self, route: Route) -> dict[str, str] | None:
        # Only canary.reconciler's own backend check uses this; it goes once that reads Router.read.
        apex = self._services.get(route.namespace, route.name)
        return None if apex is None else dict((apex.get("spec") or {}).get("selector") or {})

    def remove(self, route: Route) -> None:
        """Give the apex back its own selector, then delete the backend Services Weir created. The
        apex itself stays even if Weir created it: clients route through it."""
        self._services.update(route.namespace, route.name, release_apex)
        for name in (route.primary_service, route.canary_service):
            service = self._services.get(route.namespace, name)
            if service is not None and is_managed(service):
                self._services.delete(route.namespace, name)

"""The one small protocol every traffic router implements.

A router moves traffic between the primary and the canary of one Deployment. It owns only the
objects it created (labelled `app.kubernetes.io/managed-by: weir`, owned by the Deployment) plus
fields it explicitly declares. Every verb is idempotent: the controller may crash at any line and
call it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OwnerRef:
    """The user's Deployment: every object a router creates is owned by it (garbage collection)."""

    api_version: str
    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class Route:
    """Where traffic flows for one Deployment `name` in `namespace`."""

    namespace: str
    name: str  # the apex Service and the user's Deployment
    primary_service: str  # "<name>-primary"
    canary_service: str  # "<name>-canary"
    owner: OwnerRef
    primary_selector: tuple[tuple[str, str], ...]  # pod labels of the primary workload
    canary_selector: tuple[tuple[str, str], ...]  # pod labels of the canary workload
    ingress: str | None = None  # nginx: the user's Ingress that routes to Service `name`
    gateway_route: str | None = None  # gateway/istio: the HTTPRoute / VirtualService name


@dataclass(frozen=True)
class Match:
    """A request that matches goes to the canary regardless of weight (A/B, gray release).

    Exactly one of header or cookie is set. For headers, `value` is an exact value and `pattern`
    a regular expression; with neither, ingress-nginx semantics apply ("always" / "never").
    For cookies, the request matches when the cookie's value equals `value` (default "always"); a
    router without cookie values (ingress-nginx) may express it as a pattern on the Cookie header.
    """

    header: str | None = None
    cookie: str | None = None
    value: str | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Routing:
    """The observable routing state: the canary's weight in percent and its match rules."""

    canary_weight: int = 0
    matches: tuple[Match, ...] = ()


class RouterError(Exception):
    """The router cannot do what was asked (missing object, unsupported feature); says which and why."""

    def __init__(self, field: str, message: str, fix: str) -> None:
        super().__init__(f"{field}: {message}; fix: {fix}")
        self.field = field
        self.message = message
        self.fix = fix


class Router(Protocol):
    name: str

    def check(self, route: Route) -> None:
        """Raise RouterError if this router cannot serve `route` (a missing Ingress, a CRD not
        installed, an unsupported feature). Reads only; changes nothing."""

    def supports(self, routing: Routing) -> bool:
        """Whether this router can express `routing` (e.g. the Service router has no partial weights)."""

    def ensure(self, route: Route) -> None:
        """Create what this router owns for `route`, with all traffic on primary. Idempotent."""

    def set(self, route: Route, routing: Routing) -> None:
        """Make the data plane route as `routing` says. Idempotent."""

    def read(self, route: Route) -> Routing:
        """What the data plane is configured to do right now (read back, not remembered)."""

    def finalize(self, route: Route) -> None:
        """Hand the apex back to the user's own pods (its original selector) and remove everything this
        router created. The caller makes sure those pods are ready first. Idempotent."""

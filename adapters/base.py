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
    a regular expression (the configuration always gives one of them; a Match with neither means
    the value "always", as ingress-nginx reads it).
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


@dataclass(frozen=True)
class Observed:
    """The router's objects are all in place and route as `routing` says (canonical form)."""

    routing: Routing


@dataclass(frozen=True)
class Missing:
    """An object the routing depends on is absent (or no longer shaped as the router left it), so
    nobody can say where traffic goes until `ensure` re-creates it. `what` names it for people, e.g.
    "Ingress web-canary" or "Service web-primary"."""

    what: str


@dataclass(frozen=True)
class Unreadable:
    """The router could not look (API error, connection refused, timeout): traffic may go anywhere,
    including where it was. `reason` is the error, short."""

    reason: str


# What a router read back. Only an `Observed` read says where traffic goes: the caller must never
# treat the other two as "all traffic on primary".
RouteRead = Observed | Missing | Unreadable


class RouterError(Exception):
    """The router cannot do what was asked (missing object, unsupported feature); says which and why."""

    def __init__(self, field: str, message: str, fix: str) -> None:
        super().__init__(f"{field}: {message}; fix: {fix}")
        self.field = field
        self.message = message
        self.fix = fix


class RoutingNotApplied(RouterError):
    """`set` wrote, but the routing read back is not the routing asked for (or could not be read)."""


class Router(Protocol):
    name: str

    def check(self, route: Route) -> None:
        """Raise RouterError if this router cannot serve `route` (a missing Ingress, a CRD not
        installed, an unsupported feature). Reads only; changes nothing."""

    def supports(self, routing: Routing) -> bool:
        """Whether this router can express `routing` (e.g. the Service router has no partial weights)."""

    def ensure(self, route: Route) -> list[str]:
        """Create or repair everything this router relies on for `route` (the backend Services, the
        apex take-over, its own canary Ingress / route rule). If anything had to be (re)created or
        repaired, all traffic goes to the primary. Idempotent. Returns what it had to (re)create or
        repair, in the words of `Missing.what`; [] when everything was in place."""

    def set(self, route: Route, routing: Routing) -> None:
        """Make the data plane route as `routing` says, then read it back: RoutingNotApplied unless
        `read` is `Observed(canonical(routing))`. RouterError if an object it needs is missing (call
        `ensure`). Writes nothing when the routing is already in place."""

    def read(self, route: Route) -> RouteRead:
        """What the data plane is configured to do right now (read back, not remembered). Never raises
        for API errors: those are `Unreadable`."""

    def finalize(self, route: Route) -> None:
        """Hand the apex back to the user's own pods (its original selector) and remove everything this
        router created. The caller makes sure those pods are ready first. Idempotent."""

"""Traffic routers: one protocol (`adapters.base.Router`), one module per provider.

This package's surface is pure (no kubernetes import), so that the state machine can use its values;
the routers themselves come from `adapters.factory`:

router = make_router(spec.router or detect_router(api, namespace, name), api)
router.check(route); router.ensure(route); router.set(route, Routing(canary_weight=10))
match router.read(route):
    case Observed(routing): ...   # where traffic goes, read back
    case Missing(what): ...       # `what` is gone: ensure() re-creates it
    case Unreadable(reason): ...  # could not look: traffic may be anywhere
"""

from __future__ import annotations

from adapters.base import (
    Match,
    Missing,
    Observed,
    OwnerRef,
    Route,
    Router,
    RouteRead,
    RouterError,
    Routing,
    RoutingNotApplied,
    Unreadable,
)
from adapters.routing import canonical

__all__ = [
    "Match",
    "Missing",
    "Observed",
    "OwnerRef",
    "Route",
    "RouteRead",
    "Router",
    "RouterError",
    "Routing",
    "RoutingNotApplied",
    "Unreadable",
    "canonical",
]

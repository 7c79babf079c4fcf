"""The contract the controller relies on (canary.reconciler): after `set(canonical(wanted))`, every
router's `canonical(read())` equals `canonical(wanted)`, for every routing it `supports`."""

from __future__ import annotations

import dataclasses

import pytest

from adapters import Match, Routing, canonical, make_router
from adapters import gateway_httproute as gw
from adapters import istio_virtualservice as vs
from adapters.base import Route
from adapters.kube import custom, ingresses, services
from tests.adapters.conftest import Cluster
from tests.adapters.crds import install_httproutes, install_virtualservices
from tests.adapters.routes import apex_service, user_httproute, user_ingress, user_virtualservice

ROUTINGS = [
    Routing(),
    Routing(canary_weight=5),
    Routing(canary_weight=100),
    Routing(matches=(Match(header="X-Canary"),)),
    Routing(matches=(Match(header="x-canary", value="always"),)),
    Routing(matches=(Match(header="x-canary", value="yes"),)),
    Routing(matches=(Match(header="x-user", pattern="^qa-"),)),
    Routing(canary_weight=10, matches=(Match(cookie="beta"),)),
    Routing(matches=(Match(cookie="beta", value="always"), Match(header="x-canary", value="1"))),
    Routing(matches=(Match(cookie="region", value="eu"),)),
]


def prepared(cluster: Cluster, kind: str) -> Route:
    api, ns = cluster.api, cluster.namespace
    services(api).create(ns, apex_service())
    if kind == "nginx":
        ingresses(api).create(ns, user_ingress())
    if kind == "gateway":
        install_httproutes(api)
        custom(api, gw.GROUP, gw.VERSION, gw.PLURAL).create(ns, user_httproute())
    if kind == "istio":
        install_virtualservices(api)
        custom(api, vs.GROUP, vs.VERSION, vs.PLURAL).create(ns, user_virtualservice(ns))
    return dataclasses.replace(cluster.route, gateway_route="web" if kind in ("gateway", "istio") else None)


@pytest.mark.parametrize("kind", ["service", "nginx", "gateway", "istio"])
def test_every_supported_routing_reads_back_as_set(cluster: Cluster, kind: str) -> None:
    route = prepared(cluster, kind)
    router = make_router(kind, cluster.api)
    router.ensure(route)
    supported = [routing for routing in ROUTINGS if router.supports(canonical(routing))]
    assert supported, f"{kind} supports none of the sample routings"

    for wanted in supported:
        router.set(route, canonical(wanted))
        assert canonical(router.read(route)) == canonical(wanted), wanted

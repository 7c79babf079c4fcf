"""The router factory, routing canonical form, and the routers' refusals that need no cluster."""

from __future__ import annotations

import pytest
from kubernetes.client import ApiClient, Configuration

from adapters import Match, RouterError, Routing, canonical, ownership
from adapters.factory import make_router
from adapters.nginx import NginxRouter
from adapters.service import ServiceRouter
from canary import annotations as contract
from tests.adapters.routes import web_route


def unreachable_api() -> ApiClient:
    # Nothing listens on port 9 (discard); a router that touched the API would fail loudly.
    configuration = Configuration()
    configuration.host = "http://127.0.0.1:9"
    return ApiClient(configuration)


def test_the_factory_builds_each_router_by_its_config_name() -> None:
    api = unreachable_api()

    assert isinstance(make_router("service", api), ServiceRouter)
    assert isinstance(make_router("nginx", api), NginxRouter)
    assert make_router("nginx", api).name == "nginx"


def test_an_unknown_router_names_the_field_and_the_choices() -> None:
    with pytest.raises(RouterError) as raised:
        make_router("traefik", unreachable_api())

    assert raised.value.field == "router"
    assert "service" in raised.value.fix and "nginx" in raised.value.fix


def test_the_service_router_has_only_all_or_nothing() -> None:
    router = ServiceRouter(unreachable_api())

    assert router.supports(Routing(canary_weight=0))
    assert router.supports(Routing(canary_weight=100))
    assert not router.supports(Routing(canary_weight=10))
    assert not router.supports(Routing(canary_weight=100, matches=(Match(header="x-canary"),)))


def test_the_service_router_refuses_a_partial_weight_before_touching_anything() -> None:
    with pytest.raises(RouterError) as raised:
        ServiceRouter(unreachable_api()).set(web_route(), Routing(canary_weight=10))

    assert raised.value.field == "router"
    assert "nginx" in raised.value.fix


def test_the_nginx_router_refuses_a_cookie_pattern_before_touching_anything() -> None:
    router = NginxRouter(unreachable_api())
    gray = Routing(matches=(Match(cookie="region", pattern="e.*"),))

    assert not router.supports(gray)
    with pytest.raises(RouterError, match="pattern"):
        router.set(web_route(), gray)


def test_canonical_routing_orders_matches_and_drops_the_default_cookie_value() -> None:
    routing = Routing(canary_weight=5, matches=(Match(cookie="beta", value="always"), Match(header="x-canary")))

    assert canonical(routing) == Routing(canary_weight=5, matches=(Match(header="x-canary"), Match(cookie="beta")))


def test_ownership_labels_match_the_controllers_annotation_contract() -> None:
    assert ownership.MANAGED_BY_LABEL == contract.MANAGED_BY_LABEL
    assert ownership.MANAGED_BY_VALUE == contract.MANAGED_BY_VALUE
    assert ownership.RELEASE_OF_LABEL == contract.PART_OF_LABEL

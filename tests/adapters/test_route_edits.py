"""The gateway (HTTPRoute) and istio (VirtualService) routers' edits, as pure functions: a weighted
primary/canary split, canary-only rules for matches, exact read-back, and a complete undo."""

from __future__ import annotations

import copy
import re

import pytest

from adapters import gateway_httproute as gw
from adapters import istio_virtualservice as vs
from adapters.base import Match, Routing
from adapters.split import unsupported_reason
from tests.adapters.routes import user_httproute, user_virtualservice

NAMES = vs.Names("web", "web-primary", "web-canary", "shop")

ROUTINGS = [
    Routing(),
    Routing(canary_weight=5),
    Routing(canary_weight=100),
    Routing(matches=(Match(header="x-canary", value="1"),)),
    Routing(matches=(Match(header="x-user", pattern="^qa-.*"),)),
    Routing(canary_weight=10, matches=(Match(cookie="region", value="eu"),)),
    Routing(canary_weight=50, matches=(Match(header="x-canary", value="1"), Match(cookie="beta", value="always"))),
]


def test_an_httproute_split_sends_weights_to_primary_and_canary_on_the_apex_rule_only() -> None:
    routed = gw.routed(user_httproute(), "web", "web-primary", "web-canary", Routing(canary_weight=10))

    main, admin = routed["spec"]["rules"]
    assert main["backendRefs"] == [
        {"name": "web-primary", "port": 80, "weight": 90},
        {"name": "web-canary", "port": 80, "weight": 10},
    ]
    assert admin == user_httproute()["spec"]["rules"][1]


def test_an_httproute_match_rule_adds_the_header_to_the_rules_own_matches() -> None:
    routing = Routing(matches=(Match(header="x-canary", value="1"),))

    rules = gw.routed(user_httproute(), "web", "web-primary", "web-canary", routing)["spec"]["rules"]

    assert rules[0] == {
        "matches": [
            {
                "path": {"type": "PathPrefix", "value": "/"},
                "headers": [{"type": "Exact", "name": "x-canary", "value": "1"}],
            }
        ],
        "backendRefs": [{"name": "web-canary", "port": 80}],
    }


def test_a_cookie_match_is_a_regex_on_the_cookie_header_that_finds_it_among_others() -> None:
    (name, value) = ("region", "e.u")
    header = gw.header_condition(Match(cookie=name, value=value))

    assert header["name"] == "Cookie" and header["type"] == "RegularExpression"
    regex = header["value"]
    assert re.fullmatch(regex, "region=e.u")
    assert re.fullmatch(regex, "a=1; region=e.u; b=2")
    assert not re.fullmatch(regex, "region=eXu")
    assert not re.fullmatch(regex, "subregion=e.u")


@pytest.mark.parametrize("routing", ROUTINGS)
def test_an_httproute_reads_back_what_was_set_and_resetting_changes_nothing(routing: Routing) -> None:
    routed = gw.routed(user_httproute(), "web", "web-primary", "web-canary", routing)

    assert gw.parse_routing(routed, "web-primary", "web-canary") == routing
    assert gw.routed(copy.deepcopy(routed), "web", "web-primary", "web-canary", routing) == routed


@pytest.mark.parametrize("routing", ROUTINGS)
def test_restoring_an_httproute_gives_back_the_users_route(routing: Routing) -> None:
    routed = gw.routed(user_httproute(), "web", "web-primary", "web-canary", routing)

    assert gw.restored(routed, "web", "web-primary", "web-canary") == user_httproute()


def test_a_new_step_replaces_the_previous_steps_match_rules() -> None:
    with_match = gw.routed(
        user_httproute(), "web", "web-primary", "web-canary", Routing(matches=(Match(header="x-a", value="1"),))
    )

    plain = gw.routed(with_match, "web", "web-primary", "web-canary", Routing(canary_weight=25))

    assert plain == gw.routed(user_httproute(), "web", "web-primary", "web-canary", Routing(canary_weight=25))


def test_an_httproute_that_shares_the_apex_rule_with_other_backends_is_detected() -> None:
    assert gw.shares_backends(user_httproute("web", "legacy"), "web")
    assert not gw.shares_backends(user_httproute(), "web")


def test_only_core_services_in_the_same_namespace_count_as_the_apex() -> None:
    assert gw.is_service_ref({"name": "web"}, "web")
    assert not gw.is_service_ref({"name": "web", "namespace": "other"}, "web")
    assert not gw.is_service_ref({"name": "web", "group": "example.com", "kind": "Backend"}, "web")


def test_a_virtualservice_split_keeps_the_hosts_spelling_and_sums_weights_to_100() -> None:
    original = user_virtualservice("shop", host="web.shop.svc.cluster.local")

    routed = vs.routed(original, NAMES, Routing(canary_weight=25))

    admin, main = routed["spec"]["http"]
    assert admin == original["spec"]["http"][0]
    assert main["route"] == [
        {"destination": {"host": "web-primary.shop.svc.cluster.local", "port": {"number": 80}}, "weight": 75},
        {"destination": {"host": "web-canary.shop.svc.cluster.local", "port": {"number": 80}}, "weight": 25},
    ]


def test_a_virtualservice_match_route_comes_first_with_a_lower_case_header() -> None:
    routing = Routing(matches=(Match(header="X-Canary", value="1"),))

    http = vs.routed(user_virtualservice("shop"), NAMES, routing)["spec"]["http"]

    assert [route.get("name") for route in http] == ["admin", None, "main"]
    assert http[1] == {
        "match": [{"headers": {"x-canary": {"exact": "1"}}}],
        "route": [{"destination": {"host": "web-canary", "port": {"number": 80}}}],
    }


@pytest.mark.parametrize("routing", ROUTINGS)
def test_a_virtualservice_reads_back_what_was_set_and_resetting_changes_nothing(routing: Routing) -> None:
    routed = vs.routed(user_virtualservice("shop"), NAMES, routing)

    assert vs.parse_routing(routed, NAMES) == routing
    assert vs.routed(copy.deepcopy(routed), NAMES, routing) == routed


@pytest.mark.parametrize("routing", ROUTINGS)
def test_restoring_a_virtualservice_gives_back_the_users_object(routing: Routing) -> None:
    original = user_virtualservice("shop", host="web.shop")

    assert vs.restored(vs.routed(original, NAMES, routing), NAMES) == original


def test_virtualservice_matches_read_back_even_when_the_server_reorders_header_keys() -> None:
    # Header matches are a map: an API server may return its keys in any order.
    original = user_virtualservice("shop")
    original["spec"]["http"][1]["match"] = [{"headers": {"z-tenant": {"exact": "acme"}}}]
    routed = vs.routed(original, NAMES, Routing(matches=(Match(header="a-canary", value="1"),)))
    headers = routed["spec"]["http"][1]["match"][0]["headers"]
    routed["spec"]["http"][1]["match"][0]["headers"] = dict(sorted(headers.items(), reverse=True))

    assert vs.parse_routing(routed, NAMES).matches == (Match(header="a-canary", value="1"),)


def test_every_spelling_of_the_service_host_counts_as_the_apex() -> None:
    for host in ("web", "web.shop", "web.shop.svc", "web.shop.svc.cluster.local"):
        assert vs.references_service(user_virtualservice("shop", host=host), "web", "shop")
    assert not vs.references_service(user_virtualservice("shop", host="web.other"), "web", "shop")


@pytest.mark.parametrize(
    "routing",
    [
        Routing(canary_weight=101),
        Routing(matches=(Match(),)),
        Routing(matches=(Match(header="x", cookie="y"),)),
        Routing(matches=(Match(header="x", value="1", pattern="1+"),)),
        Routing(matches=(Match(cookie="c", pattern="e.*"),)),
    ],
)
def test_what_routes_cannot_express_is_refused_with_a_reason(routing: Routing) -> None:
    assert unsupported_reason(routing)


def test_routes_take_several_matches_and_custom_cookie_values() -> None:
    assert unsupported_reason(ROUTINGS[-1]) is None
    assert unsupported_reason(Routing(matches=(Match(cookie="region", value="eu"),))) is None

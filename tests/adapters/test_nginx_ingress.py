"""The ingress-nginx canary Ingress, its annotations and their read-back, as pure functions."""

from __future__ import annotations

import copy

import pytest

from adapters import nginx_ingress as nginx
from adapters.base import Match, Routing
from adapters.nginx import find_ingress
from tests.adapters.routes import backend, path, user_ingress, web_route


def test_canary_copy_keeps_class_host_path_and_tls_and_points_at_the_canary_service() -> None:
    canary = nginx.canary_ingress(user_ingress(), web_route())

    assert canary["metadata"]["name"] == "web-canary"
    assert canary["spec"] == {
        "ingressClassName": "nginx",
        "rules": [{"host": "shop.example", "http": {"paths": [path("web-canary")]}}],
        "tls": [{"hosts": ["shop.example"], "secretName": "shop-tls"}],
    }


def test_canary_copy_leaves_out_paths_and_rules_of_other_services() -> None:
    # ingress-nginx allows one canary per host and path: /admin may be another release's.
    ingress = user_ingress(
        rules=[
            {"host": "shop.example", "http": {"paths": [path("web"), path("admin", "/admin")]}},
            {"host": "admin.example", "http": {"paths": [path("admin")]}},
        ]
    )

    spec = nginx.canary_ingress(ingress, web_route())["spec"]

    assert spec["rules"] == [{"host": "shop.example", "http": {"paths": [path("web-canary")]}}]


def test_canary_copy_retargets_a_default_backend_on_the_service_only() -> None:
    on_web = nginx.canary_spec({"defaultBackend": backend("web", 8080)}, "web", "web-canary")
    on_other = nginx.canary_spec({"defaultBackend": backend("other")}, "web", "web-canary")

    assert on_web == {"defaultBackend": backend("web-canary", 8080)}
    assert on_other == {}


def test_canary_ingress_is_marked_canary_at_weight_zero_and_owned_by_the_deployment() -> None:
    canary = nginx.canary_ingress(user_ingress(), web_route(uid="u-1"))
    metadata = canary["metadata"]

    assert metadata["annotations"] == {
        nginx.CANARY: "true",
        nginx.WEIGHT: "0",
        nginx.WEIGHT_TOTAL: "100",
    }
    assert metadata["labels"] == {"app.kubernetes.io/managed-by": "weir", "weir.dev/release-of": "web"}
    assert metadata["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u-1", "controller": True}
    ]


def test_canary_ingress_keeps_a_legacy_ingress_class_annotation() -> None:
    ingress = user_ingress()
    del ingress["spec"]["ingressClassName"]
    ingress["metadata"]["annotations"][nginx.LEGACY_CLASS] = "nginx-internal"

    canary = nginx.canary_ingress(ingress, web_route())

    assert canary["metadata"]["annotations"][nginx.LEGACY_CLASS] == "nginx-internal"
    assert "ingressClassName" not in canary["spec"]


def test_copying_leaves_the_users_ingress_untouched() -> None:
    ingress = user_ingress()
    before = copy.deepcopy(ingress)

    canary = nginx.canary_ingress(ingress, web_route())
    canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "changed"

    assert ingress == before


def test_sync_follows_the_users_rules_but_keeps_the_current_routing() -> None:
    route = web_route()
    existing = nginx.canary_ingress(user_ingress(), route)
    existing["metadata"]["annotations"][nginx.WEIGHT] = "25"
    edited = user_ingress(rules=[{"host": "new.example", "http": {"paths": [path("web", "/v2")]}}])

    synced = nginx.sync_canary_ingress(copy.deepcopy(existing), edited, route)

    assert synced["spec"]["rules"] == [{"host": "new.example", "http": {"paths": [path("web-canary", "/v2")]}}]
    assert synced["metadata"]["annotations"][nginx.WEIGHT] == "25"


def test_sync_of_an_up_to_date_canary_changes_nothing() -> None:
    route = web_route()
    existing = nginx.canary_ingress(user_ingress(), route)

    assert nginx.sync_canary_ingress(copy.deepcopy(existing), user_ingress(), route) == existing


@pytest.mark.parametrize(
    ("routing", "annotations"),
    [
        (Routing(canary_weight=0), {nginx.WEIGHT: "0", nginx.WEIGHT_TOTAL: "100"}),
        (Routing(canary_weight=25), {nginx.WEIGHT: "25", nginx.WEIGHT_TOTAL: "100"}),
        (
            Routing(matches=(Match(header="x-canary"),)),
            {nginx.WEIGHT: "0", nginx.WEIGHT_TOTAL: "100", nginx.BY_HEADER: "x-canary"},
        ),
        (
            Routing(matches=(Match(header="x-canary", value="yes"),)),
            {
                nginx.WEIGHT: "0",
                nginx.WEIGHT_TOTAL: "100",
                nginx.BY_HEADER: "x-canary",
                nginx.BY_HEADER_VALUE: "yes",
            },
        ),
        (
            Routing(matches=(Match(header="x-user", pattern="^(alice|bob)$"),)),
            {
                nginx.WEIGHT: "0",
                nginx.WEIGHT_TOTAL: "100",
                nginx.BY_HEADER: "x-user",
                nginx.BY_HEADER_PATTERN: "^(alice|bob)$",
            },
        ),
        (
            Routing(canary_weight=10, matches=(Match(cookie="beta"),)),
            {nginx.WEIGHT: "10", nginx.WEIGHT_TOTAL: "100", nginx.BY_COOKIE: "beta"},
        ),
        (
            Routing(matches=(Match(header="x-canary", value="1"), Match(cookie="beta"))),
            {
                nginx.WEIGHT: "0",
                nginx.WEIGHT_TOTAL: "100",
                nginx.BY_HEADER: "x-canary",
                nginx.BY_HEADER_VALUE: "1",
                nginx.BY_COOKIE: "beta",
            },
        ),
    ],
)
def test_every_documented_rule_renders_and_reads_back(routing: Routing, annotations: dict[str, str]) -> None:
    assert nginx.unsupported_reason(routing) is None
    assert nginx.render_routing(routing) == annotations
    assert nginx.parse_routing({nginx.CANARY: "true", **annotations}) == routing


def test_a_cookie_match_on_always_renders_like_the_default() -> None:
    explicit = Routing(matches=(Match(cookie="beta", value="always"),))

    assert nginx.render_routing(explicit) == nginx.render_routing(Routing(matches=(Match(cookie="beta"),)))


def test_new_routing_replaces_stale_match_annotations_and_keeps_the_rest() -> None:
    current = {
        nginx.CANARY: "true",
        nginx.LEGACY_CLASS: "nginx",
        **nginx.render_routing(Routing(matches=(Match(header="x-canary", value="1"), Match(cookie="beta")))),
    }

    updated = nginx.with_routing(current, Routing(canary_weight=50))

    assert updated == {
        nginx.CANARY: "true",
        nginx.LEGACY_CLASS: "nginx",
        nginx.WEIGHT: "50",
        nginx.WEIGHT_TOTAL: "100",
    }


def test_an_ingress_not_marked_canary_reads_as_no_canary_traffic() -> None:
    assert nginx.parse_routing({nginx.WEIGHT: "50"}) == Routing()


def test_read_back_scales_a_custom_weight_total_to_percent() -> None:
    annotations = {nginx.CANARY: "true", nginx.WEIGHT: "250", nginx.WEIGHT_TOTAL: "1000"}

    assert nginx.parse_routing(annotations) == Routing(canary_weight=25)


def test_read_back_follows_nginx_in_ignoring_the_pattern_when_a_value_is_set() -> None:
    annotations = {
        nginx.CANARY: "true",
        nginx.BY_HEADER: "x-canary",
        nginx.BY_HEADER_VALUE: "1",
        nginx.BY_HEADER_PATTERN: ".*",
    }

    assert nginx.parse_routing(annotations).matches == (Match(header="x-canary", value="1"),)


@pytest.mark.parametrize(
    "routing",
    [
        Routing(canary_weight=101),
        Routing(canary_weight=-1),
        Routing(matches=(Match(header="a"), Match(header="b"))),
        Routing(matches=(Match(cookie="a"), Match(cookie="b"))),
        Routing(matches=(Match(cookie="region", pattern="e.*"),)),
        Routing(matches=(Match(cookie="region", value="eu"), Match(header="x-canary"))),
        Routing(matches=(Match(header="x", value="1", pattern="1+"),)),
        Routing(matches=(Match(header="x", cookie="y"),)),
        Routing(matches=(Match(value="1"),)),
    ],
)
def test_what_ingress_nginx_cannot_express_is_refused_with_a_reason(routing: Routing) -> None:
    assert nginx.unsupported_reason(routing)


def test_routes_to_service_sees_rules_and_the_default_backend() -> None:
    assert nginx.routes_to_service(user_ingress(), "admin")
    assert nginx.routes_to_service({"spec": {"defaultBackend": backend("web")}}, "web")
    assert not nginx.routes_to_service(user_ingress(), "checkout")


def test_finding_the_users_ingress_skips_canary_ingresses() -> None:
    canary = nginx.canary_ingress(user_ingress(), web_route())
    canary["spec"]["rules"][0]["http"]["paths"].append(path("web"))  # even one that names the apex

    assert find_ingress([canary], "web") is None
    assert find_ingress([canary, user_ingress()], "web") == "web"


def test_another_canary_on_the_same_host_and_path_is_found() -> None:
    ours = nginx.canary_ingress(user_ingress(), web_route())
    rival = copy.deepcopy(ours)
    rival["metadata"]["name"] = "old-canary"
    elsewhere = copy.deepcopy(rival)
    elsewhere["metadata"]["name"] = "other-canary"
    elsewhere["spec"]["rules"][0]["host"] = "other.example"

    assert nginx.competing_canary([ours, elsewhere], "web-canary", ours["spec"]) is None
    assert nginx.competing_canary([ours, elsewhere, rival], "web-canary", ours["spec"]) == "old-canary"
    assert nginx.competing_canary([user_ingress()], "web-canary", ours["spec"]) is None  # not a canary


def test_a_cookie_with_a_custom_value_becomes_a_cookie_header_pattern_and_reads_back() -> None:
    import re

    gray = Routing(matches=(Match(cookie="region", value="eu"),))
    annotations = {nginx.CANARY: "true", **nginx.render_routing(gray)}
    assert annotations[nginx.BY_HEADER] == "Cookie"
    pattern = annotations[nginx.BY_HEADER_PATTERN]
    assert re.search(pattern, "theme=dark; region=eu; lang=de")
    assert re.search(pattern, "region=eu")
    assert not re.search(pattern, "region=eux") and not re.search(pattern, "myregion=eu")
    assert nginx.parse_routing(annotations) == gray

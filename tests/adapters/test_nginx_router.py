"""The `nginx` router against the Kubernetes API emulator: a `<ingress>-canary` Ingress Weir owns."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from adapters import Match, Missing, Observed, RouterError, Routing, Unreadable
from adapters import nginx_ingress as nginx
from adapters.factory import make_router
from adapters.kube import ingresses, services
from tests.adapters.conftest import Cluster
from tests.adapters.routes import apex_service, path, user_ingress
from tests.adapters.world import ingress, service, versions


def with_user_objects(cluster: Cluster) -> None:
    services(cluster.api).create(cluster.namespace, apex_service())
    ingresses(cluster.api).create(cluster.namespace, user_ingress())


def test_ensure_creates_a_canary_ingress_at_weight_zero_owned_by_the_deployment(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    with_user_objects(cluster)

    make_router("nginx", api).ensure(route)

    canary = ingress(api, ns, "web-canary")
    assert canary is not None
    annotations = canary["metadata"]["annotations"]
    assert annotations[nginx.CANARY] == "true"
    assert annotations[nginx.WEIGHT] == "0"
    assert canary["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "weir"
    assert canary["metadata"]["ownerReferences"][0]["uid"] == route.owner.uid
    assert canary["spec"]["ingressClassName"] == "nginx"
    assert canary["spec"]["rules"] == [{"host": "shop.example", "http": {"paths": [path("web-canary")]}}]
    assert canary["spec"]["tls"] == [{"hosts": ["shop.example"], "secretName": "shop-tls"}]
    # The canary Ingress needs the backend Services, and the user's Ingress now reaches the primary.
    assert service(api, ns, "web-canary") is not None
    apex = service(api, ns, "web")
    assert apex is not None and apex["spec"]["selector"] == {"app": "web-primary"}


def test_ensure_twice_writes_nothing_the_second_time(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    with_user_objects(cluster)
    router = make_router("nginx", api)
    router.ensure(route)
    before = versions(api, ns)

    router.ensure(route)

    assert versions(api, ns) == before


def test_set_writes_weight_and_header_rule_and_reads_them_back(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    with_user_objects(cluster)
    router = make_router("nginx", api)
    router.ensure(route)
    wanted = Routing(canary_weight=25, matches=(Match(header="x-canary", value="yes"),))

    router.set(route, wanted)

    assert router.read(route) == Observed(wanted)
    canary = ingress(api, ns, "web-canary")
    assert canary is not None
    annotations = canary["metadata"]["annotations"]
    assert annotations[nginx.WEIGHT] == "25"
    assert annotations[nginx.WEIGHT_TOTAL] == "100"
    assert annotations[nginx.BY_HEADER] == "x-canary"
    assert annotations[nginx.BY_HEADER_VALUE] == "yes"


def test_setting_the_current_routing_again_writes_nothing(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    with_user_objects(cluster)
    router = make_router("nginx", api)
    router.ensure(route)
    router.set(route, Routing(canary_weight=10, matches=(Match(cookie="beta"),)))
    before = versions(api, ns)

    router.set(route, Routing(canary_weight=10, matches=(Match(cookie="beta"),)))

    assert versions(api, ns) == before


def test_a_new_step_drops_the_previous_steps_match_rules(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    with_user_objects(cluster)
    router = make_router("nginx", api)
    router.ensure(route)
    router.set(route, Routing(matches=(Match(header="x-user", pattern="^qa-"), Match(cookie="beta"))))

    router.set(route, Routing(canary_weight=50))

    assert router.read(route) == Observed(Routing(canary_weight=50))
    canary = ingress(api, ns, "web-canary")
    assert canary is not None
    assert not {nginx.BY_HEADER, nginx.BY_HEADER_PATTERN, nginx.BY_COOKIE} & set(canary["metadata"]["annotations"])


def test_ensure_after_a_weight_change_keeps_the_weight(cluster: Cluster) -> None:
    # A controller restarted mid-release calls ensure again; the canary must keep its share.
    api, route = cluster.api, cluster.route
    with_user_objects(cluster)
    router = make_router("nginx", api)
    router.ensure(route)
    router.set(route, Routing(canary_weight=25))

    router.ensure(route)

    assert router.read(route) == Observed(Routing(canary_weight=25))


def test_ensure_follows_an_edit_of_the_users_ingress(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    with_user_objects(cluster)
    router = make_router("nginx", api)
    router.ensure(route)
    edited = user_ingress(rules=[{"host": "shop.example", "http": {"paths": [path("web"), path("web", "/v2")]}}])
    current = ingress(api, ns, "web")
    assert current is not None
    edited["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    ingresses(api).replace(ns, "web", edited)

    router.ensure(route)

    canary = ingress(api, ns, "web-canary")
    assert canary is not None
    assert canary["spec"]["rules"][0]["http"]["paths"] == [path("web-canary"), path("web-canary", "/v2")]


def test_the_users_ingress_is_found_when_the_config_does_not_name_it(cluster: Cluster) -> None:
    api, ns = cluster.api, cluster.namespace
    with_user_objects(cluster)
    route = dataclasses.replace(cluster.route, ingress=None)
    router = make_router("nginx", api)

    router.ensure(route)
    router.set(route, Routing(canary_weight=5))

    assert ingress(api, ns, "web-canary") is not None
    assert router.read(route) == Observed(Routing(canary_weight=5))


def test_a_missing_ingress_is_a_router_error_that_changes_nothing(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service())
    before = versions(api, ns)
    router = make_router("nginx", api)

    for verb in (router.check, router.ensure):
        with pytest.raises(RouterError) as raised:
            verb(route)
        assert raised.value.field == "ingress"
        assert "web" in raised.value.fix

    assert versions(api, ns) == before


def test_an_ingress_that_does_not_route_to_the_service_is_refused(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service())
    elsewhere = user_ingress(rules=[{"host": "shop.example", "http": {"paths": [path("checkout")]}}])
    ingresses(api).create(ns, elsewhere)
    before = versions(api, ns)

    with pytest.raises(RouterError) as raised:
        make_router("nginx", api).ensure(route)

    assert raised.value.field == "ingress"
    assert "no backend on Service web" in raised.value.message
    assert versions(api, ns) == before


def test_a_canary_ingress_weir_did_not_create_is_never_overwritten(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    with_user_objects(cluster)
    theirs = user_ingress()
    theirs["metadata"]["name"] = "web-canary"
    ingresses(api).create(ns, theirs)
    before = versions(api, ns)

    with pytest.raises(RouterError) as raised:
        make_router("nginx", api).ensure(route)

    assert raised.value.field == "ingress"
    assert versions(api, ns) == before


def test_finalize_removes_the_canary_ingress_and_services_and_leaves_the_users_ingress(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    with_user_objects(cluster)
    router = make_router("nginx", api)
    router.ensure(route)
    router.set(route, Routing(canary_weight=50))
    users = ingress(api, ns, "web")
    assert users is not None

    router.finalize(route)

    assert ingress(api, ns, "web-canary") is None
    assert service(api, ns, "web-primary") is None and service(api, ns, "web-canary") is None
    apex = service(api, ns, "web")
    assert apex is not None and apex["spec"]["selector"] == {"app": "web"}
    after = ingress(api, ns, "web")
    assert after is not None and after["metadata"]["resourceVersion"] == users["metadata"]["resourceVersion"]
    assert router.read(route) == Missing("Service web-primary")  # nothing of Weir's is left to route


def test_finalize_twice_changes_nothing_the_second_time(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    with_user_objects(cluster)
    router = make_router("nginx", api)
    router.ensure(route)
    router.finalize(route)
    before = versions(api, ns)

    router.finalize(route)

    assert versions(api, ns) == before


def test_a_rival_canary_ingress_on_the_same_host_and_path_is_refused(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    with_user_objects(cluster)
    rival = user_ingress()
    rival["metadata"] = {"name": "hand-made-canary", "annotations": {nginx.CANARY: "true", nginx.WEIGHT: "20"}}
    ingresses(api).create(ns, rival)
    before = versions(api, ns)

    with pytest.raises(RouterError) as raised:
        make_router("nginx", api).ensure(route)

    assert raised.value.field == "ingress"
    assert "hand-made-canary" in raised.value.message
    assert versions(api, ns) == before


def test_an_apex_reset_to_the_canarys_pods_reads_as_all_canary_and_set_repairs_it(cluster: Cluster) -> None:
    # `kubectl apply` of the user's own Service manifest puts back `app: web`: the Deployment Weir
    # keeps at 0 replicas between releases. The controller must see it and `set` must fix it.
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    with_user_objects(cluster)
    router = make_router("nginx", api)
    router.ensure(route)

    def reapplied(apex: dict[str, Any]) -> dict[str, Any]:
        apex["spec"]["selector"] = {"app": "web"}
        return apex

    services(api).update(ns, "web", reapplied)

    assert router.read(route) == Observed(Routing(canary_weight=100))
    router.set(route, Routing())
    apex = service(api, ns, "web")
    assert apex is not None and apex["spec"]["selector"] == {"app": "web-primary"}
    assert router.read(route) == Observed(Routing())


def test_a_weight_annotation_nginx_could_not_parse_either_reads_unreadable(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    with_user_objects(cluster)
    router = make_router("nginx", api)
    router.ensure(route)

    def garbled(canary: dict[str, Any]) -> dict[str, Any]:
        canary["metadata"]["annotations"][nginx.WEIGHT] = "half"
        return canary

    ingresses(api).update(ns, "web-canary", garbled)

    seen = router.read(route)
    assert isinstance(seen, Unreadable) and "half" in seen.reason

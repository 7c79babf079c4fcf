"""The `service` router against the Kubernetes API emulator: blue-green by the apex Service's selector."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters import Missing, Observed, RouterError, Routing
from adapters.backends import ORIGINAL_SELECTOR
from adapters.factory import make_router
from adapters.kube import deployments, services
from tests.adapters.conftest import Cluster
from tests.adapters.routes import apex_service
from tests.adapters.world import service, versions


def test_ensure_creates_owned_primary_and_canary_services_with_the_apex_ports(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service())

    make_router("service", api).ensure(route)

    for name, selector in (("web-primary", {"app": "web-primary"}), ("web-canary", {"app": "web"})):
        created = service(api, ns, name)
        assert created is not None
        assert created["spec"]["selector"] == selector
        assert created["spec"]["type"] == "ClusterIP"
        assert [(p["name"], p["port"], p["targetPort"]) for p in created["spec"]["ports"]] == [("http", 80, "http")]
        assert "nodePort" not in created["spec"]["ports"][0]
        assert created["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "weir"
        (owner,) = created["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("Deployment", "web", route.owner.uid)


def test_ensure_points_the_apex_at_the_primary_and_remembers_its_selector(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service({"app": "web", "tier": "front"}))

    make_router("service", api).ensure(route)

    apex = service(api, ns, "web")
    assert apex is not None
    assert apex["spec"]["selector"] == {"app": "web-primary"}
    assert json.loads(apex["metadata"]["annotations"][ORIGINAL_SELECTOR]) == {"app": "web", "tier": "front"}
    assert apex["metadata"]["labels"] == {"team": "shop"}  # the user's Service stays the user's


def test_ensure_twice_writes_nothing_the_second_time(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service())
    router = make_router("service", api)
    router.ensure(route)
    before = versions(api, ns)

    router.ensure(route)

    assert versions(api, ns) == before


def test_set_switches_all_traffic_in_one_selector_write_and_reads_it_back(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service())
    router = make_router("service", api)
    router.ensure(route)
    assert router.read(route) == Observed(Routing(canary_weight=0))

    router.set(route, Routing(canary_weight=100))

    apex = service(api, ns, "web")
    assert apex is not None and apex["spec"]["selector"] == {"app": "web"}
    assert router.read(route) == Observed(Routing(canary_weight=100))
    router.set(route, Routing(canary_weight=0))
    assert router.read(route) == Observed(Routing(canary_weight=0))


def test_setting_the_current_routing_again_writes_nothing(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service())
    router = make_router("service", api)
    router.ensure(route)
    router.set(route, Routing(canary_weight=100))
    before = versions(api, ns)

    router.set(route, Routing(canary_weight=100))

    assert versions(api, ns) == before


def test_ensure_after_a_switch_does_not_move_traffic_back(cluster: Cluster) -> None:
    # A controller restarted mid-release calls ensure again; the canary must keep its traffic.
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service())
    router = make_router("service", api)
    router.ensure(route)
    router.set(route, Routing(canary_weight=100))

    router.ensure(route)

    assert router.read(route) == Observed(Routing(canary_weight=100))


def test_a_partial_weight_is_refused_and_changes_nothing(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service())
    router = make_router("service", api)
    router.ensure(route)
    before = versions(api, ns)

    with pytest.raises(RouterError) as raised:
        router.set(route, Routing(canary_weight=30))

    assert raised.value.field == "router"
    assert versions(api, ns) == before


def test_finalize_restores_the_original_selector_and_deletes_weirs_services(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service({"app": "web", "tier": "front"}))
    router = make_router("service", api)
    router.ensure(route)
    router.set(route, Routing(canary_weight=100))

    router.finalize(route)

    apex = service(api, ns, "web")
    assert apex is not None
    assert apex["spec"]["selector"] == {"app": "web", "tier": "front"}
    assert ORIGINAL_SELECTOR not in (apex["metadata"].get("annotations") or {})
    assert service(api, ns, "web-primary") is None
    assert service(api, ns, "web-canary") is None


def test_finalize_twice_changes_nothing_the_second_time(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service())
    router = make_router("service", api)
    router.ensure(route)
    router.finalize(route)
    before = versions(api, ns)

    router.finalize(route)

    assert versions(api, ns) == before


def test_without_an_apex_ensure_creates_one_from_the_deployments_container_ports(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    router = make_router("service", api)

    router.ensure(route)

    apex = service(api, ns, "web")
    assert apex is not None
    assert apex["spec"]["selector"] == {"app": "web-primary"}
    assert [(p["name"], p["port"], p["targetPort"]) for p in apex["spec"]["ports"]] == [("http", 8080, 8080)]
    assert apex["metadata"]["ownerReferences"][0]["uid"] == route.owner.uid

    router.finalize(route)

    kept = service(api, ns, "web")
    assert kept is not None, "the apex carries client traffic: it outlives the release"
    assert kept["spec"]["selector"] == {"app": "web"}


def test_a_service_weir_did_not_create_is_never_taken_over(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service())
    theirs = apex_service({"app": "legacy"})
    theirs["metadata"]["name"] = "web-primary"
    theirs["spec"]["ports"][0].pop("nodePort")
    services(api).create(ns, theirs)
    before = versions(api, ns)
    router = make_router("service", api)

    with pytest.raises(RouterError) as raised:
        router.ensure(route)

    assert raised.value.field == "service"
    assert "web-primary" in raised.value.message
    assert versions(api, ns) == before


def test_reading_an_apex_that_selects_neither_side_is_missing_not_a_guess(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    services(api).create(ns, apex_service())
    router = make_router("service", api)
    router.ensure(route)

    def elsewhere(apex: dict[str, Any]) -> dict[str, Any]:
        apex["spec"]["selector"] = {"app": "something-else"}
        return apex

    services(api).update(ns, "web", elsewhere)

    seen = router.read(route)
    assert isinstance(seen, Missing) and "Service web selecting" in seen.what
    assert router.ensure(route) == [seen.what]
    assert router.read(route) == Observed(Routing())


def test_without_an_apex_or_container_ports_check_names_the_missing_ports(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route

    def without_ports(deployment: dict[str, Any]) -> dict[str, Any]:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            container.pop("ports", None)
        return deployment

    deployments(api).update(ns, "web", without_ports)

    with pytest.raises(RouterError) as raised:
        make_router("service", api).ensure(route)

    assert raised.value.field == "ports"
    assert "ports" in raised.value.fix
    assert versions(api, ns) == {}


def test_an_apex_without_a_selector_cannot_be_switched(cluster: Cluster) -> None:
    api, ns, route = cluster.api, cluster.namespace, cluster.route
    external = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"type": "ExternalName", "externalName": "web.example.com"},
    }
    services(api).create(ns, external)
    before = versions(api, ns)

    with pytest.raises(RouterError, match="no selector"):
        make_router("service", api).ensure(route)

    assert versions(api, ns) == before

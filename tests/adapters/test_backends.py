"""The primary/canary/apex Services every router shares, as pure functions."""

from __future__ import annotations

import copy
import json

from adapters import backends
from adapters.ownership import MANAGED_BY_LABEL, claim, is_managed
from tests.adapters.routes import web_route


def apex(selector: dict[str, str]) -> dict:
    return {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def test_backend_ports_drop_node_ports_and_spell_out_the_servers_defaults() -> None:
    ports = [
        {"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080, "protocol": "TCP"},
        {"name": "grpc", "port": 9090, "appProtocol": "grpc"},
    ]

    assert backends.service_ports(ports) == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
        {"name": "grpc", "port": 9090, "targetPort": 9090, "protocol": "TCP", "appProtocol": "grpc"},
    ]


def test_ports_from_a_deployment_name_each_port_when_there_are_several() -> None:
    deployment = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "ports": [{"containerPort": 8080, "name": "http"}]},
                        {"name": "sidecar", "ports": [{"containerPort": 9100, "protocol": "TCP"}]},
                    ]
                }
            }
        }
    }

    assert backends.ports_from_deployment(deployment) == [
        {"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"},
        {"name": "port-9100", "port": 9100, "targetPort": 9100, "protocol": "TCP"},
    ]


def test_a_single_unnamed_container_port_stays_unnamed() -> None:
    deployment = {"spec": {"template": {"spec": {"containers": [{"ports": [{"containerPort": 8080}]}]}}}}

    assert backends.ports_from_deployment(deployment) == [{"port": 8080, "targetPort": 8080, "protocol": "TCP"}]


def test_backend_services_select_one_workload_each_and_belong_to_the_deployment() -> None:
    route = web_route()
    ports = backends.service_ports([{"port": 80}])

    primary = backends.backend_service(route, "web-primary", dict(route.primary_selector), ports)

    assert primary["spec"] == {"type": "ClusterIP", "selector": {"app": "web-primary"}, "ports": ports}
    assert is_managed(primary)
    assert [ref["uid"] for ref in primary["metadata"]["ownerReferences"]] == [route.owner.uid]


def test_taking_over_the_apex_points_it_at_the_primary_and_remembers_its_selector() -> None:
    taken = backends.take_over_apex(apex({"app": "web", "tier": "front"}), web_route())

    assert taken["spec"]["selector"] == {"app": "web-primary"}
    original = taken["metadata"]["annotations"][backends.ORIGINAL_SELECTOR]
    assert json.loads(original) == {"app": "web", "tier": "front"}


def test_taking_over_again_neither_forgets_the_original_nor_moves_traffic() -> None:
    route = web_route()
    taken = backends.take_over_apex(apex({"app": "web", "tier": "front"}), route)
    taken["spec"]["selector"] = dict(route.canary_selector)  # a release at 100% on the canary

    again = backends.take_over_apex(copy.deepcopy(taken), route)

    assert again == taken


def test_taking_over_repairs_an_apex_that_selects_neither_side() -> None:
    route = web_route()
    taken = backends.take_over_apex(apex({"app": "web", "tier": "front"}), route)
    taken["spec"]["selector"] = {"app": "web", "tier": "front"}  # the user re-applied their Service

    repaired = backends.take_over_apex(taken, route)

    assert repaired["spec"]["selector"] == {"app": "web-primary"}
    assert json.loads(repaired["metadata"]["annotations"][backends.ORIGINAL_SELECTOR]) == {
        "app": "web",
        "tier": "front",
    }


def test_releasing_the_apex_restores_its_selector_and_forgets_it() -> None:
    taken = backends.take_over_apex(apex({"app": "web", "tier": "front"}), web_route())

    released = backends.release_apex(taken)

    assert released is not None
    assert released["spec"]["selector"] == {"app": "web", "tier": "front"}
    assert backends.ORIGINAL_SELECTOR not in released["metadata"]["annotations"]


def test_releasing_an_apex_weir_never_took_over_changes_nothing() -> None:
    assert backends.release_apex(apex({"app": "web"})) is None


def test_an_apex_weir_creates_gives_traffic_back_to_the_users_pods_on_release() -> None:
    route = web_route()
    created = backends.new_apex_service(route, backends.service_ports([{"port": 8080}]))

    assert created["spec"]["selector"] == {"app": "web-primary"}
    released = backends.release_apex(created)
    assert released is not None
    assert released["spec"]["selector"] == dict(route.canary_selector)


def test_syncing_a_backend_keeps_server_fields_and_restores_selector_and_ports() -> None:
    route = web_route()
    wanted = backends.backend_service(route, "web-canary", {"app": "web"}, backends.service_ports([{"port": 80}]))
    drifted = copy.deepcopy(wanted)
    drifted["spec"].update({"clusterIP": "10.0.0.7", "selector": {"app": "other"}, "ports": []})

    synced = backends.sync_backend(drifted, wanted, route)

    assert synced["spec"] == {**wanted["spec"], "clusterIP": "10.0.0.7"}


def test_claiming_twice_is_a_no_op_and_keeps_other_owners() -> None:
    route = web_route()
    other_owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "other"}
    obj = {"metadata": {"labels": {"team": "shop"}, "ownerReferences": [other_owner]}}

    once = claim(copy.deepcopy(obj), route)
    twice = claim(copy.deepcopy(once), route)

    assert once == twice
    assert once["metadata"]["ownerReferences"][0] == other_owner
    assert once["metadata"]["labels"]["team"] == "shop"
    assert once["metadata"]["labels"][MANAGED_BY_LABEL] == "weir"

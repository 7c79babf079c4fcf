"""The `gateway` and `istio` routers against the API emulator, with their CRDs installed: they edit
the user's HTTPRoute / VirtualService in place and undo it exactly."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes.client import ApiClient

from adapters import Match, Observed, RouterError, Routing
from adapters import gateway_httproute as gw
from adapters import istio_virtualservice as vs
from adapters.base import Route
from adapters.factory import make_router
from adapters.kube import Resource, custom, services
from tests.adapters.conftest import Cluster
from tests.adapters.crds import install_httproutes, install_virtualservices
from tests.adapters.routes import apex_service, user_httproute, user_virtualservice
from tests.adapters.world import service


@dataclasses.dataclass(frozen=True)
class Kind:
    router: str
    resource: Callable[[ApiClient], Resource]
    install: Callable[[ApiClient], None]
    user_object: Callable[[str], dict[str, Any]]


KINDS = [
    Kind(
        "gateway",
        lambda api: custom(api, gw.GROUP, gw.VERSION, gw.PLURAL),
        install_httproutes,
        lambda ns: user_httproute(),
    ),
    Kind(
        "istio", lambda api: custom(api, vs.GROUP, vs.VERSION, vs.PLURAL), install_virtualservices, user_virtualservice
    ),
]


def prepared(cluster: Cluster, kind: Kind) -> tuple[Resource, Route]:
    kind.install(cluster.api)
    services(cluster.api).create(cluster.namespace, apex_service())
    objects = kind.resource(cluster.api)
    objects.create(cluster.namespace, kind.user_object(cluster.namespace))
    return objects, dataclasses.replace(cluster.route, ingress=None, gateway_route="web")


def version(objects: Resource, namespace: str) -> str:
    current = objects.get(namespace, "web")
    assert current is not None
    return str(current["metadata"]["resourceVersion"])


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.router)
def test_ensure_splits_the_apex_backend_at_weight_zero_once(cluster: Cluster, kind: Kind) -> None:
    objects, route = prepared(cluster, kind)
    router = make_router(kind.router, cluster.api)

    router.ensure(route)
    after_first = version(objects, cluster.namespace)
    router.ensure(route)

    assert router.read(route) == Observed(Routing())
    assert version(objects, cluster.namespace) == after_first
    assert service(cluster.api, cluster.namespace, "web-canary") is not None


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.router)
def test_set_reads_back_weights_and_matches_and_a_repeat_writes_nothing(cluster: Cluster, kind: Kind) -> None:
    objects, route = prepared(cluster, kind)
    router = make_router(kind.router, cluster.api)
    router.ensure(route)
    wanted = Routing(
        canary_weight=25, matches=(Match(header="x-canary", value="1"), Match(cookie="region", value="eu"))
    )

    router.set(route, wanted)
    written = version(objects, cluster.namespace)
    router.set(route, wanted)

    assert router.read(route) == Observed(wanted)
    assert version(objects, cluster.namespace) == written


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.router)
def test_ensure_after_a_weight_change_keeps_the_weight(cluster: Cluster, kind: Kind) -> None:
    _, route = prepared(cluster, kind)
    router = make_router(kind.router, cluster.api)
    router.ensure(route)
    router.set(route, Routing(canary_weight=50))

    router.ensure(route)

    assert router.read(route) == Observed(Routing(canary_weight=50))


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.router)
def test_finalize_gives_the_user_back_their_object_and_is_idempotent(cluster: Cluster, kind: Kind) -> None:
    objects, route = prepared(cluster, kind)
    router = make_router(kind.router, cluster.api)
    router.ensure(route)
    router.set(route, Routing(canary_weight=10, matches=(Match(header="x-canary", value="1"),)))

    router.finalize(route)
    restored_version = version(objects, cluster.namespace)
    router.finalize(route)

    restored = objects.get(cluster.namespace, "web")
    assert restored is not None
    assert restored["spec"] == kind.user_object(cluster.namespace)["spec"]
    assert version(objects, cluster.namespace) == restored_version
    assert service(cluster.api, cluster.namespace, "web-primary") is None


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.router)
def test_the_route_object_is_found_when_the_config_does_not_name_it(cluster: Cluster, kind: Kind) -> None:
    _, route = prepared(cluster, kind)
    unnamed = dataclasses.replace(route, gateway_route=None)
    router = make_router(kind.router, cluster.api)

    router.ensure(unnamed)
    router.set(unnamed, Routing(canary_weight=5))

    assert router.read(unnamed) == Observed(Routing(canary_weight=5))  # found again once split


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.router)
def test_a_missing_route_object_is_a_router_error(cluster: Cluster, kind: Kind) -> None:
    kind.install(cluster.api)
    route = dataclasses.replace(cluster.route, gateway_route="nope")

    with pytest.raises(RouterError) as raised:
        make_router(kind.router, cluster.api).check(route)

    assert raised.value.field == "route"
    assert "nope" in raised.value.message


def test_a_rule_shared_with_other_backends_is_refused_and_left_alone(cluster: Cluster) -> None:
    install_httproutes(cluster.api)
    services(cluster.api).create(cluster.namespace, apex_service())
    objects = custom(cluster.api, gw.GROUP, gw.VERSION, gw.PLURAL)
    objects.create(cluster.namespace, user_httproute("web", "legacy"))
    route = dataclasses.replace(cluster.route, gateway_route="web")
    before = version(objects, cluster.namespace)

    with pytest.raises(RouterError, match="other backends"):
        make_router("gateway", cluster.api).ensure(route)

    assert version(objects, cluster.namespace) == before
    assert service(cluster.api, cluster.namespace, "web-primary") is None

"""Which router `detect_router` picks from what already routes to the Deployment's Service."""

from __future__ import annotations

from adapters import gateway_httproute as gw
from adapters import istio_virtualservice as vs
from adapters.factory import detect_router, make_router
from adapters.kube import custom, ingresses, services
from tests.adapters.conftest import Cluster
from tests.adapters.crds import install_httproutes, install_virtualservices
from tests.adapters.routes import apex_service, user_httproute, user_ingress, user_virtualservice


def test_nothing_but_a_service_means_the_service_router(cluster: Cluster) -> None:
    services(cluster.api).create(cluster.namespace, apex_service())

    assert detect_router(cluster.api, cluster.namespace, "web") == "service"


def test_an_ingress_to_the_service_means_nginx_even_next_to_routes(cluster: Cluster) -> None:
    install_httproutes(cluster.api)
    custom(cluster.api, gw.GROUP, gw.VERSION, gw.PLURAL).create(cluster.namespace, user_httproute())
    ingresses(cluster.api).create(cluster.namespace, user_ingress())

    assert detect_router(cluster.api, cluster.namespace, "web") == "nginx"


def test_an_httproute_to_the_service_means_gateway_before_istio(cluster: Cluster) -> None:
    install_httproutes(cluster.api)
    install_virtualservices(cluster.api)
    custom(cluster.api, vs.GROUP, vs.VERSION, vs.PLURAL).create(
        cluster.namespace, user_virtualservice(cluster.namespace)
    )
    custom(cluster.api, gw.GROUP, gw.VERSION, gw.PLURAL).create(cluster.namespace, user_httproute())

    assert detect_router(cluster.api, cluster.namespace, "web") == "gateway"


def test_a_virtualservice_to_the_service_means_istio(cluster: Cluster) -> None:
    install_virtualservices(cluster.api)
    host = f"web.{cluster.namespace}.svc.cluster.local"
    custom(cluster.api, vs.GROUP, vs.VERSION, vs.PLURAL).create(
        cluster.namespace, user_virtualservice(cluster.namespace, host=host)
    )

    assert detect_router(cluster.api, cluster.namespace, "web") == "istio"


def test_detection_still_finds_a_route_weir_has_already_split(cluster: Cluster) -> None:
    install_httproutes(cluster.api)
    services(cluster.api).create(cluster.namespace, apex_service())
    custom(cluster.api, gw.GROUP, gw.VERSION, gw.PLURAL).create(cluster.namespace, user_httproute())
    make_router("gateway", cluster.api).ensure(cluster.route)

    assert detect_router(cluster.api, cluster.namespace, "web") == "gateway"


def test_routes_to_other_services_do_not_count(cluster: Cluster) -> None:
    install_httproutes(cluster.api)
    custom(cluster.api, gw.GROUP, gw.VERSION, gw.PLURAL).create(cluster.namespace, user_httproute("checkout"))

    assert detect_router(cluster.api, cluster.namespace, "web") == "service"

"""The contract the controller relies on (canary.reconciler), run against every router:

- `read()` says what it saw: `Observed(canonical routing)`, `Missing(what)` when an object the routing
  depends on is gone, `Unreadable(reason)` when the API cannot be asked; it never raises for API errors;
- `ensure()` re-creates whatever is missing with all traffic on the primary and says what it re-created;
- `set()` returns only once the routing reads back as asked (RoutingNotApplied otherwise), and refuses
  with RouterError while an object it needs is missing.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, Configuration, CoreV1Api, V1Namespace, V1ObjectMeta

from adapters import (
    Match,
    Missing,
    Observed,
    Route,
    Router,
    RouteRead,
    RouterError,
    Routing,
    RoutingNotApplied,
    Unreadable,
    canonical,
)
from adapters import gateway_httproute as gw
from adapters import istio_virtualservice as vs
from adapters import kube as kube_module
from adapters.factory import make_router
from adapters.kube import Resource, custom, deployments, ingresses, services
from adapters.ownership import is_managed, owner_reference
from sandbox.apiserver.server import SandboxThread
from tests.adapters.conftest import Cluster
from tests.adapters.crds import install_httproutes, install_virtualservices
from tests.adapters.routes import (
    apex_service,
    user_httproute,
    user_ingress,
    user_virtualservice,
    web_deployment,
    web_route,
)

KINDS = ["service", "nginx", "gateway", "istio"]
REPO = Path(__file__).resolve().parents[2]

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
    """The user's objects the router `kind` works from: the apex Service, plus its Ingress / HTTPRoute
    / VirtualService."""
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


def ready(cluster: Cluster, kind: str) -> tuple[Router, Route]:
    route = prepared(cluster, kind)
    router = make_router(kind, cluster.api)
    assert router.ensure(route), "the first ensure creates the backend Services at least"
    return router, route


# --- what each router relies on, and how it gets lost ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class Loss:
    """One object a router relies on, lost the way it happens in a cluster."""

    what: str  # the `Missing.what` a read reports, and the item `ensure` returns
    kinds: tuple[str, ...]  # the routers that rely on it
    lose: Callable[[Cluster], None]


def route_objects(api: ApiClient, kind: str) -> Resource:
    if kind == "gateway":
        return custom(api, gw.GROUP, gw.VERSION, gw.PLURAL)
    return custom(api, vs.GROUP, vs.VERSION, vs.PLURAL)


def reapply_user_route(kind: str) -> Callable[[Cluster], None]:
    """The user (or a GitOps sync) re-applies their own HTTPRoute / VirtualService: Weir's split of the
    apex backend is gone, the object itself is still there."""

    def lose(cluster: Cluster) -> None:
        original = user_httproute() if kind == "gateway" else user_virtualservice(cluster.namespace)

        def reapplied(current: dict[str, Any]) -> dict[str, Any]:
            current["spec"] = original["spec"]
            return current

        assert route_objects(cluster.api, kind).update(cluster.namespace, "web", reapplied) is not None

    return lose


def delete_service(name: str) -> Callable[[Cluster], None]:
    def lose(cluster: Cluster) -> None:
        assert services(cluster.api).delete(cluster.namespace, name)

    return lose


def point_apex_elsewhere(cluster: Cluster) -> None:
    """A user re-applies their apex Service with a selector of their own."""

    def elsewhere(apex: dict[str, Any]) -> dict[str, Any]:
        apex["spec"]["selector"] = {"app": "web", "tier": "front"}
        return apex

    assert services(cluster.api).update(cluster.namespace, "web", elsewhere) is not None


def retarget_canary_service(cluster: Cluster) -> None:
    def elsewhere(service: dict[str, Any]) -> dict[str, Any]:
        service["spec"]["selector"] = {"app": "web-primary"}
        return service

    assert services(cluster.api).update(cluster.namespace, "web-canary", elsewhere) is not None


def delete_canary_ingress(cluster: Cluster) -> None:
    assert ingresses(cluster.api).delete(cluster.namespace, "web-canary")


def unmark_canary_ingress(cluster: Cluster) -> None:
    def unmarked(ingress: dict[str, Any]) -> dict[str, Any]:
        del ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"]
        return ingress

    assert ingresses(cluster.api).update(cluster.namespace, "web-canary", unmarked) is not None


ALL = tuple(KINDS)
LOSSES = [
    Loss("Service web-primary", ALL, delete_service("web-primary")),
    Loss("Service web-canary", ALL, delete_service("web-canary")),
    Loss("Service web", ALL, delete_service("web")),
    Loss("Service web selecting the pods of web-primary or web-canary", ALL, point_apex_elsewhere),
    Loss("selector app=web of Service web-canary", ALL, retarget_canary_service),
    Loss("Ingress web-canary", ("nginx",), delete_canary_ingress),
    Loss("annotation nginx.ingress.kubernetes.io/canary=true on Ingress web-canary", ("nginx",), unmark_canary_ingress),
    Loss("HTTPRoute web rule splitting web-primary/web-canary", ("gateway",), reapply_user_route("gateway")),
    Loss("VirtualService web http route splitting web-primary/web-canary", ("istio",), reapply_user_route("istio")),
]
CASES = [(kind, loss) for loss in LOSSES for kind in loss.kinds]


# --- Observed -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_after_ensure_every_router_reads_all_traffic_on_primary_and_a_second_ensure_has_nothing_to_do(
    cluster: Cluster, kind: str
) -> None:
    router, route = ready(cluster, kind)

    assert router.read(route) == Observed(Routing())
    assert router.ensure(route) == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_supported_routing_reads_back_as_set(cluster: Cluster, kind: str) -> None:
    router, route = ready(cluster, kind)
    supported = [routing for routing in ROUTINGS if router.supports(canonical(routing))]
    assert supported, f"{kind} supports none of the sample routings"

    for wanted in supported:
        router.set(route, wanted)  # not canonical: set canonicalizes, read answers in canonical form
        assert router.read(route) == Observed(canonical(wanted)), wanted


@pytest.mark.parametrize("kind", KINDS)
def test_before_ensure_the_router_reads_missing_not_all_on_primary(cluster: Cluster, kind: str) -> None:
    route = prepared(cluster, kind)

    seen = make_router(kind, cluster.api).read(route)

    assert seen == Missing("Service web-primary")


# --- Missing, and ensure repairs it -----------------------------------------------------------------


@pytest.mark.parametrize(("kind", "loss"), CASES, ids=[f"{kind}: {loss.what}" for kind, loss in CASES])
def test_a_lost_object_reads_missing_and_ensure_recreates_it_with_all_traffic_on_primary(
    cluster: Cluster, kind: str, loss: Loss
) -> None:
    router, route = ready(cluster, kind)
    router.set(route, Routing(canary_weight=100))
    loss.lose(cluster)

    assert router.read(route) == Missing(loss.what)
    with pytest.raises(RouterError) as refused:
        router.set(route, Routing(canary_weight=100))
    assert loss.what in refused.value.message
    assert not isinstance(refused.value, RoutingNotApplied)

    assert router.ensure(route) == [loss.what]
    assert router.read(route) == Observed(Routing()), "repaired routes send everything to the primary"
    assert router.ensure(route) == []


@pytest.mark.parametrize("kind", KINDS)
def test_after_a_repair_set_and_read_round_trip_again(cluster: Cluster, kind: str) -> None:
    router, route = ready(cluster, kind)
    delete_service("web-canary")(cluster)
    router.ensure(route)

    router.set(route, Routing(canary_weight=100))

    assert router.read(route) == Observed(Routing(canary_weight=100))


def test_a_deleted_user_ingress_reads_missing_and_ensure_says_why_it_cannot_help(cluster: Cluster) -> None:
    router, route = ready(cluster, "nginx")
    assert ingresses(cluster.api).delete(cluster.namespace, "web")

    assert router.read(route) == Missing("Ingress web")
    with pytest.raises(RouterError) as refused:
        router.ensure(route)
    assert refused.value.field == "ingress"


@pytest.mark.parametrize("kind", ["gateway", "istio"])
def test_a_deleted_user_route_object_reads_missing(cluster: Cluster, kind: str) -> None:
    router, route = ready(cluster, kind)
    assert route_objects(cluster.api, kind).delete(cluster.namespace, "web")

    seen = router.read(route)

    assert seen == Missing(f"{'HTTPRoute' if kind == 'gateway' else 'VirtualService'} web")


# --- Unreadable -----------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def client_for(host: str) -> ApiClient:
    configuration = Configuration()
    configuration.host = host
    return ApiClient(configuration)


def assert_unreadable(seen: RouteRead) -> None:
    assert isinstance(seen, Unreadable), seen
    assert seen.reason
    assert len(seen.reason) <= 300


@pytest.mark.parametrize("kind", KINDS)
def test_a_read_against_a_closed_port_is_unreadable_and_does_not_raise(kind: str) -> None:
    api = client_for(f"http://127.0.0.1:{closed_port()}")
    route = dataclasses.replace(web_route(), gateway_route="web" if kind in ("gateway", "istio") else None)

    assert_unreadable(make_router(kind, api).read(route))


@pytest.fixture
def stoppable() -> Iterator[tuple[SandboxThread, Cluster]]:
    """A cluster on a sandbox of its own, which the test may stop."""
    running = SandboxThread()
    with running:
        api = running.api_client()
        namespace = f"weir-test-{uuid.uuid4().hex[:8]}"
        CoreV1Api(api).create_namespace(V1Namespace(metadata=V1ObjectMeta(name=namespace)))
        created = deployments(api).create(namespace, web_deployment())
        route = web_route(namespace=namespace, uid=created["metadata"]["uid"])
        try:
            yield running, Cluster(api, running.kubeconfig_path, namespace, route)
        finally:
            api.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_read_after_the_api_server_went_away_is_unreadable_not_all_on_primary(
    stoppable: tuple[SandboxThread, Cluster], kind: str
) -> None:
    running, cluster = stoppable
    router, route = ready(cluster, kind)
    router.set(route, Routing(canary_weight=100))
    assert router.read(route) == Observed(Routing(canary_weight=100))

    running.close()

    assert_unreadable(router.read(route))


class SilentServer:
    """Accepts connections and never answers: an API server that hangs."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._accepted: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _accept(self) -> None:
        self._socket.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self._accepted.append(connection)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        for connection in self._accepted:
            connection.close()
        self._socket.close()


def test_a_read_from_a_hung_api_server_times_out_as_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube_module, "REQUEST_TIMEOUT_SECONDS", 0.2)
    server = SilentServer()
    try:
        started = time.monotonic()
        seen = make_router("nginx", client_for(server.url)).read(web_route())
        elapsed = time.monotonic() - started
    finally:
        server.close()

    assert_unreadable(seen)
    assert elapsed < 10, f"the read took {elapsed:.1f} s: the request timeout was not applied"


# --- set verifies its read-back --------------------------------------------------------------------


def lying(kind: str, api: ApiClient, lie: Callable[[RouteRead], RouteRead]) -> Router:
    """Router `kind` whose reads after the first pass through `lie`: a data plane that drops writes
    or stops answering just after one (a test-only subclass; the routers' writes are real)."""
    real: type[Any] = type(make_router(kind, api))
    reads = 0

    def read(self: Any, route: Route) -> RouteRead:
        nonlocal reads
        reads += 1
        seen: RouteRead = real.read(self, route)
        return seen if reads == 1 else lie(seen)

    router: Router = type(f"Lying{kind.title()}Router", (real,), {"read": read})(api)
    return router


STALE: Callable[[RouteRead], RouteRead] = lambda seen: Observed(Routing())  # noqa: E731
GONE: Callable[[RouteRead], RouteRead] = lambda seen: Unreadable("connection reset")  # noqa: E731


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lie", [STALE, GONE], ids=["write dropped", "read-back unreadable"])
def test_set_raises_routing_not_applied_unless_the_routing_reads_back_as_set(
    cluster: Cluster, kind: str, lie: Callable[[RouteRead], RouteRead]
) -> None:
    _, route = ready(cluster, kind)
    router = lying(kind, cluster.api, lie)

    with pytest.raises(RoutingNotApplied) as raised:
        router.set(route, Routing(canary_weight=100))

    assert kind in raised.value.message and "100" in raised.value.message


# --- ownership ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_everything_a_router_creates_is_owned_by_the_deployment_through_the_one_builder(
    cluster: Cluster, kind: str
) -> None:
    route = prepared(cluster, kind)
    assert services(cluster.api).delete(cluster.namespace, "web")  # so that ensure creates the apex too
    make_router(kind, cluster.api).ensure(route)

    created = [
        obj
        for resource in (services(cluster.api), ingresses(cluster.api))
        for obj in resource.list(cluster.namespace)
        if is_managed(obj)
    ]

    expected = {"Service/web", "Service/web-primary", "Service/web-canary"}
    if kind == "nginx":
        expected.add("Ingress/web-canary")
    assert {f"{obj['kind']}/{obj['metadata']['name']}" for obj in created} == expected
    for obj in created:
        assert obj["metadata"]["ownerReferences"] == [owner_reference(route.owner)]
    # Without blockOwnerDeletion: it would need `update` on deployments/finalizers (least-privilege RBAC).
    assert "blockOwnerDeletion" not in owner_reference(route.owner)


# --- the package surface --------------------------------------------------------------------------


def test_the_package_surface_imports_without_the_kubernetes_client() -> None:
    code = "import sys; sys.modules['kubernetes'] = None; import adapters, adapters.base, adapters.routing"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr


def test_the_kubernetes_client_is_really_blocked_in_that_check() -> None:
    code = "import sys; sys.modules['kubernetes'] = None; import adapters.factory"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)

    assert result.returncode != 0 and "kubernetes" in result.stderr

"""The pure steps from Kubernetes objects to nginx configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.dataplane import (
    CanaryPolicy,
    Endpoint,
    IngressError,
    NginxLayout,
    ServiceKey,
    canary_policy,
    render,
    routes_from_ingresses,
    service_endpoints,
)
from tests.sandbox_full.conftest import CANARY, canary_ingress, ingress, pod, service

LAYOUT = NginxLayout(Path("/tmp/weir-test"), 18080)
PRIMARY, CANARY_SVC = ServiceKey("default", "web-primary"), ServiceKey("default", "web-canary")
BOTH_READY: dict[ServiceKey, tuple[Endpoint, ...]] = {
    PRIMARY: (Endpoint("127.0.0.1", 1001, "p"),),
    CANARY_SVC: (Endpoint("127.0.0.1", 2002, "c"),),
}


def test_canary_policy_reads_every_documented_annotation() -> None:
    policy = canary_policy({
        CANARY + "canary-by-header": "x-canary", CANARY + "canary-by-header-value": "gold",
        CANARY + "canary-by-header-pattern": "^g.*", CANARY + "canary-by-cookie": "user",
        CANARY + "canary-weight": "30", CANARY + "canary-weight-total": "200",
    })
    assert policy == CanaryPolicy("x-canary", "gold", "^g.*", "user", 30, 200)
    assert policy.weight_percent == 15.0


@pytest.mark.parametrize(("annotation", "value"), [
    ("canary-weight", "ten"), ("canary-weight", "-5"), ("canary-weight-total", "0"),
    ("canary-by-header", "x canary"), ("canary-by-header-pattern", "(unclosed"),
])
def test_malformed_canary_annotation_names_itself(annotation: str, value: str) -> None:
    with pytest.raises(IngressError, match=CANARY + annotation):
        canary_policy({CANARY + annotation: value})


def test_canary_pairs_with_the_main_ingress_of_the_same_host_and_path() -> None:
    routes, problems = routes_from_ingresses([
        canary_ingress("web-canary", "web-canary", canary_weight="10"),
        ingress("web", "web-primary"),
        ingress("other", "other", host="other.example.com"),
    ])
    assert problems == ()
    web = next(r for r in routes if r.host == "web.example.com")
    assert (web.main, web.canary, web.policy) == (PRIMARY, CANARY_SVC, CanaryPolicy(weight=10))
    other = next(r for r in routes if r.host == "other.example.com")
    assert other.canary is None


def test_canary_without_main_ingress_is_reported_and_ignored() -> None:
    routes, problems = routes_from_ingresses([canary_ingress("lonely", "web-canary", canary_weight="50")])
    assert routes == ()
    assert "no main Ingress" in problems[0]


def test_oldest_ingress_wins_a_contested_host_and_path() -> None:
    routes, _ = routes_from_ingresses([
        ingress("newer", "b", created="2026-02-01T00:00:00Z"),
        ingress("older", "a", created="2026-01-01T00:00:00Z"),
    ])
    assert [r.main.name for r in routes] == ["a"]


def test_invalid_ingress_is_reported_and_the_others_still_route() -> None:
    routes, problems = routes_from_ingresses([
        ingress("bad", "x", path="/has space"), ingress("good", "web-primary"),
    ])
    assert [r.main for r in routes] == [PRIMARY]
    assert "default/bad" in problems[0] and "path" in problems[0]


def test_service_endpoints_are_its_ready_pods_only() -> None:
    pods = [
        pod("ready", {"app": "web"}, 1001),
        pod("not-ready", {"app": "web"}, 1002, ready=False),
        pod("terminating", {"app": "web"}, 1003, terminating=True),
        pod("other-app", {"app": "db"}, 1004),
        pod("other-namespace", {"app": "web"}, 1005, namespace="prod"),
    ]
    endpoints = service_endpoints([service("web", {"app": "web"}), service("empty", {"app": "none"})], pods)
    assert endpoints[ServiceKey("default", "web")] == (Endpoint("127.0.0.1", 1001, "ready"),)
    assert endpoints[ServiceKey("default", "empty")] == ()


def _render(*ingresses: dict[str, object], endpoints: dict[ServiceKey, tuple[Endpoint, ...]] = BOTH_READY) -> str:
    routes, _ = routes_from_ingresses(ingresses)
    return render(routes, endpoints, LAYOUT, generation=7)


def test_header_value_matches_exactly_and_case_sensitively() -> None:
    # nginx map strings ignore case; ingress-nginx compares exactly, hence an anchored regex.
    text = _render(ingress("web", "web-primary"),
                   canary_ingress("c", "web-canary", canary_by_header="X-Canary", canary_by_header_value="Gold"))
    assert "map $http_x_canary $weir_route_0_header" in text
    assert '"~^Gold$" web-canary.default.svc;' in text
    assert "always" not in text  # with a value, always/never are not special


def test_weight_total_scales_the_split() -> None:
    text = _render(ingress("web", "web-primary"),
                   canary_ingress("c", "web-canary", canary_weight="1", canary_weight_total="400"))
    assert "0.25% web-canary.default.svc;" in text


def test_canary_without_ready_pods_gets_no_traffic() -> None:
    text = _render(ingress("web", "web-primary"), canary_ingress("c", "web-canary", canary_weight="100"),
                   endpoints={PRIMARY: BOTH_READY[PRIMARY], CANARY_SVC: ()})
    assert "proxy_pass http://web-primary.default.svc;" in text
    assert "split_clients" not in text


def test_main_without_ready_pods_answers_503() -> None:
    text = _render(ingress("web", "web-primary"), canary_ingress("c", "web-canary", canary_weight="50"),
                   endpoints={PRIMARY: (), CANARY_SVC: BOTH_READY[CANARY_SVC]})
    assert "return 503;" in text


def test_every_service_is_reachable_by_its_dns_names_on_loopback_only() -> None:
    text = _render()
    assert "server_name web-primary.default.svc.cluster.local web-primary.default.svc" in text
    listens = [line.strip() for line in text.splitlines() if line.strip().startswith("listen")]
    assert all(line.startswith(("listen 127.0.0.1:18080", "listen unix:")) for line in listens)
    assert 'return 200 "7\\n";' in text  # the generation a reload waits for

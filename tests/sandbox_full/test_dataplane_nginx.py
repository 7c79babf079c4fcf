"""Ingress and Service traffic through a real nginx to real demo-app processes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from sandbox.dataplane import NginxDataPlane
from sandbox.loadgen import LoadGenerator, LoadSpec, send
from tests.sandbox_full.conftest import (
    DemoProcess,
    canary_ingress,
    ingress,
    kill,
    listening_addresses,
    pod,
    service,
    spawn_demo_app,
)

pytestmark = pytest.mark.real

HOST = "web.example.com"


@pytest.fixture(scope="module")
def arms() -> Iterator[tuple[DemoProcess, DemoProcess]]:
    primary, canary = spawn_demo_app("v1", "web-primary-1"), spawn_demo_app("v2", "web-canary-1")
    yield primary, canary
    kill(primary.process)
    kill(canary.process)


def cluster(arms: tuple[DemoProcess, DemoProcess], canary_ready: bool = True) -> dict[str, list[Any]]:
    primary, canary = arms
    return {
        "services": [service("web-primary", {"app": "web-primary"}), service("web-canary", {"app": "web"}),
                     service("idle", {"app": "nobody"})],
        "pods": [pod(primary.pod, {"app": "web-primary"}, primary.port),
                 pod(canary.pod, {"app": "web"}, canary.port, ready=canary_ready)],
    }


async def route(plane: NginxDataPlane, arms: tuple[DemoProcess, DemoProcess], **rules: str) -> None:
    await route_rules(plane, arms, rules)


async def route_rules(plane: NginxDataPlane, arms: tuple[DemoProcess, DemoProcess], rules: Mapping[str, str],
                      canary_ready: bool = True) -> None:
    objects = cluster(arms, canary_ready)
    ingresses = [ingress("web", "web-primary")]
    if rules:
        ingresses.append(canary_ingress("web-canary", "web-canary", **rules))
    await plane.apply(objects["services"], objects["pods"], ingresses)


async def versions(plane: NginxDataPlane, count: int = 20, host: str = HOST,
                   headers: Mapping[str, str] | None = None,
                   cookies: Mapping[str, str] | None = None) -> dict[str, int]:
    report = await send(plane.url + "/", count, rate=500, headers={"Host": host, **(headers or {})},
                        cookies=cookies)
    assert report.failed == 0, report.to_json()
    return report.by_version


@pytest.mark.parametrize("weight", [10, 50])
async def test_canary_weight_holds_within_3_points_over_6000_requests(
    nginx_plane: NginxDataPlane, arms: tuple[DemoProcess, DemoProcess], weight: int
) -> None:
    # 6000 requests: at weight 50 the sampling sd is 0.65 points, so 3 points is 4.6 sd and a correct
    # split fails by chance about once in 300,000 runs (with 2000 it was once in 140).
    await route(nginx_plane, arms, canary_weight=str(weight))
    report = await send(nginx_plane.url + "/", 6000, rate=1000, headers={"Host": HOST})
    assert report.failed == 0 and report.answered == 6000
    assert abs(100 * report.share("v2") - weight) <= 3, report.by_version


async def test_weight_total_sets_the_denominator(nginx_plane: NginxDataPlane,
                                                 arms: tuple[DemoProcess, DemoProcess]) -> None:
    await route(nginx_plane, arms, canary_weight="50", canary_weight_total="200")
    report = await send(nginx_plane.url + "/", 1000, rate=1000, headers={"Host": HOST})
    assert abs(100 * report.share("v2") - 25) <= 5, report.by_version


HEADER = {"canary_by_header": "x-canary"}


@pytest.mark.parametrize(("rules", "headers", "cookies", "served_by"), [
    pytest.param(HEADER | {"canary_weight": "0"}, {"x-canary": "always"}, {}, "v2", id="header-always"),
    pytest.param(HEADER | {"canary_weight": "100"}, {"x-canary": "never"}, {}, "v1", id="header-never"),
    pytest.param(HEADER | {"canary_weight": "100"}, {"x-canary": "maybe"}, {}, "v2", id="other-value-falls-to-weight"),
    pytest.param(HEADER | {"canary_weight": "0"}, {"x-canary": "maybe"}, {}, "v1", id="other-value-weight-0"),
    pytest.param(HEADER | {"canary_by_header_value": "gold"}, {"x-canary": "gold"}, {}, "v2", id="value-match"),
    pytest.param(HEADER | {"canary_by_header_value": "gold"}, {"x-canary": "Gold"}, {}, "v1", id="value-exact-case"),
    pytest.param(HEADER | {"canary_by_header_value": "gold", "canary_weight": "100"}, {"x-canary": "never"}, {},
                 "v2", id="value-set-never-is-not-special"),
    pytest.param(HEADER | {"canary_by_header_pattern": "^(gold|silver)$"}, {"x-canary": "silver"}, {}, "v2",
                 id="pattern-match"),
    pytest.param(HEADER | {"canary_by_header_pattern": "^(gold|silver)$"}, {"x-canary": "bronze"}, {}, "v1",
                 id="pattern-miss"),
    pytest.param({"canary_by_cookie": "canary-user"}, {}, {"a": "1", "canary-user": "always"}, "v2",
                 id="cookie-always"),
    pytest.param({"canary_by_cookie": "user", "canary_weight": "100"}, {}, {"user": "never"}, "v1",
                 id="cookie-never"),
    pytest.param({"canary_by_cookie": "user", "canary_weight": "0"}, {}, {"user": "someone"}, "v1",
                 id="cookie-other-falls-to-weight"),
    pytest.param(HEADER | {"canary_by_cookie": "user"}, {"x-canary": "never"}, {"user": "always"}, "v1",
                 id="header-before-cookie"),
    pytest.param(HEADER | {"canary_by_cookie": "user"}, {"x-canary": "maybe"}, {"user": "always"}, "v2",
                 id="undecided-header-then-cookie"),
])
async def test_header_and_cookie_rules_route_as_ingress_nginx_documents(
    nginx_plane: NginxDataPlane, arms: tuple[DemoProcess, DemoProcess], rules: dict[str, str],
    headers: dict[str, str], cookies: dict[str, str], served_by: str,
) -> None:
    await route_rules(nginx_plane, arms, rules)
    assert await versions(nginx_plane, headers=headers, cookies=cookies) == {served_by: 20}


async def test_canary_without_ready_pods_gets_no_traffic(nginx_plane: NginxDataPlane,
                                                         arms: tuple[DemoProcess, DemoProcess]) -> None:
    await route_rules(nginx_plane, arms, {"canary_weight": "100"}, canary_ready=False)
    assert await versions(nginx_plane) == {"v1": 20}


async def test_services_route_by_their_dns_names(nginx_plane: NginxDataPlane,
                                                 arms: tuple[DemoProcess, DemoProcess]) -> None:
    await route(nginx_plane, arms)
    assert await versions(nginx_plane, host="web-canary.default.svc.cluster.local") == {"v2": 20}
    assert await versions(nginx_plane, host="web-primary.default.svc") == {"v1": 20}
    idle = await send(nginx_plane.url + "/", 3, rate=100, headers={"Host": "idle.default.svc"})
    unknown = await send(nginx_plane.url + "/", 3, rate=100, headers={"Host": "nowhere.example.com"})
    assert idle.by_code == {503: 3}
    assert unknown.by_code == {404: 3}


async def test_nginx_listens_on_one_loopback_port_only(nginx_plane: NginxDataPlane) -> None:
    assert nginx_plane.pid is not None
    assert listening_addresses(nginx_plane.pid) == {f"127.0.0.1:{nginx_plane.port}"}


async def test_invalid_canary_is_reported_and_main_keeps_serving(
    nginx_plane: NginxDataPlane, arms: tuple[DemoProcess, DemoProcess]
) -> None:
    await route(nginx_plane, arms, canary_weight="half")
    assert "canary-weight" in nginx_plane.problems[0]
    assert await versions(nginx_plane) == {"v1": 20}


async def test_reloads_under_load_drop_no_request(nginx_plane: NginxDataPlane,
                                                  arms: tuple[DemoProcess, DemoProcess]) -> None:
    await route(nginx_plane, arms, canary_weight="0")
    # Slow answers keep ~40 requests in flight on keep-alive connections across every reload.
    load = LoadGenerator(LoadSpec(nginx_plane.url + "/?delay_ms=200", rate=200, headers=(("Host", HOST),)))
    running = asyncio.create_task(load.run())
    first = nginx_plane.generation
    for step in range(20):
        await route(nginx_plane, arms, canary_weight=str(10 + 40 * (step % 2)))
    load.stop()
    report = await running
    assert nginx_plane.generation == first + 20
    assert report.sent > 100
    assert report.failed == 0 and report.answered == report.sent, report.to_json()
    assert set(report.by_version) == {"v1", "v2"}

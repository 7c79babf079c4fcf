"""Pods as local processes: start, readiness, preStop, graceful and forced stop, close."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox.process_runtime import PodProcessSpec, ProcessRuntime, ReadinessProbe, image_tag
from sandbox.runtime import PodStatusReport
from tests.sandbox_full.conftest import wait_for


def pod_object(name: str = "web-7c9d-x2k4p", image: str = "demo:v3", env: dict[str, str] | None = None,
               **container: Any) -> dict[str, Any]:
    grace = container.pop("grace", None)
    spec: dict[str, Any] = {"containers": [{
        "name": "app", "image": image, "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        **container,
    }]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": {"name": name, "namespace": "demo", "labels": {"app": "web"}}, "spec": spec}


# --- reading the Pod ---------------------------------------------------------------------------------


def test_spec_takes_env_probe_prestop_and_grace_from_the_pod() -> None:
    pod = pod_object(
        env={"ERROR_RATE": "0.05"}, grace=12,
        readinessProbe={"httpGet": {"path": "/ready", "port": 8080}, "initialDelaySeconds": 2,
                        "periodSeconds": 3, "failureThreshold": 5},
        lifecycle={"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 5"]}}},
    )
    pod["spec"]["containers"][0]["env"].append(
        {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    spec = PodProcessSpec.from_pod(pod)
    env = dict(spec.env)
    assert env["ERROR_RATE"] == "0.05" and env["MY_NAME"] == "web-7c9d-x2k4p"
    assert env["VERSION"] == "v3" and env["POD_NAME"] == "web-7c9d-x2k4p"
    assert spec.readiness == ReadinessProbe(path="/ready", initial_delay_seconds=2, period_seconds=3,
                                            failure_threshold=5)
    assert (spec.pre_stop_seconds, spec.grace_seconds) == (5, 12)


def test_explicit_version_env_wins_over_the_image_tag() -> None:
    assert dict(PodProcessSpec.from_pod(pod_object(env={"VERSION": "blue"})).env)["VERSION"] == "blue"


def test_prestop_sleep_action_is_honoured() -> None:
    pod = pod_object(lifecycle={"preStop": {"sleep": {"seconds": 7}}})
    assert PodProcessSpec.from_pod(pod).pre_stop_seconds == 7


@pytest.mark.parametrize(("image", "tag"), [
    ("demo:v2", "v2"), ("registry.local:5000/team/demo:2.1.0", "2.1.0"), ("demo", "latest"),
    ("registry.local:5000/demo", "latest"), ("demo@sha256:0123456789abcdef0123", "0123456789ab"),
])
def test_image_tag(image: str, tag: str) -> None:
    assert image_tag(image) == tag


# --- running it --------------------------------------------------------------------------------------


class Reports:
    def __init__(self) -> None:
        self.items: list[PodStatusReport] = []
        self.on_report: Callable[[PodStatusReport], Any] | None = None

    async def __call__(self, report: PodStatusReport) -> None:
        if self.on_report is not None:
            await self.on_report(report)  # before recording: a waiter sees the report once this is done
        self.items.append(report)

    async def first(self, what: str, predicate: Callable[[PodStatusReport], bool],
                    timeout: float = 15) -> PodStatusReport:
        async def found() -> PodStatusReport | None:
            return next((r for r in self.items if predicate(r)), None)

        result: PodStatusReport = await wait_for(found, timeout, what)
        return result


@pytest.fixture
async def reports() -> Reports:
    return Reports()


@pytest.fixture
async def runtime(reports: Reports, tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    runtime = ProcessRuntime(reports, log_dir=tmp_path / "pods")
    yield runtime
    await runtime.close()


async def get(port: int, path: str = "/") -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_start_reports_running_then_ready_and_serves_its_version(
    runtime: ProcessRuntime, reports: Reports
) -> None:
    await runtime.start(pod_object(image="demo:v3"))
    ready = await reports.first("a ready report", lambda r: r.ready)
    assert reports.items[0].phase == "Running" and not reports.items[0].ready
    assert ready.port is not None and ready.port == reports.items[0].port
    assert (ready.namespace, ready.name, ready.pod_ip) == ("demo", "web-7c9d-x2k4p", "127.0.0.1")
    status, body = await get(ready.port)
    assert status == 200 and '"version": "v3"' in body and '"pod": "web-7c9d-x2k4p"' in body


async def test_ready_only_once_the_probed_path_answers(runtime: ProcessRuntime, reports: Reports) -> None:
    seen_by_probe: list[int] = []

    async def check_app_agrees(report: PodStatusReport) -> None:
        if report.ready and report.port is not None:
            seen_by_probe.append((await get(report.port, "/readyz"))[0])

    reports.on_report = check_app_agrees
    await runtime.start(pod_object(env={"READY_AFTER_SECONDS": "1.5"},
                                   readinessProbe={"httpGet": {"path": "/readyz"}, "periodSeconds": 0.1}))
    await reports.first("a ready report", lambda r: r.ready)
    assert seen_by_probe == [200]


async def test_custom_probe_path_is_used(runtime: ProcessRuntime, reports: Reports) -> None:
    # /readyz would never succeed; the pod's probe asks /healthz instead.
    await runtime.start(pod_object(env={"FAIL_READINESS": "true"},
                                   readinessProbe={"httpGet": {"path": "/healthz"}, "periodSeconds": 0.1}))
    await reports.first("a ready report", lambda r: r.ready)


async def test_stop_reports_unready_serves_through_prestop_then_exits(
    runtime: ProcessRuntime, reports: Reports
) -> None:
    await runtime.start(pod_object(grace=10, lifecycle={"preStop": {"sleep": {"seconds": 2}}}))
    ready = await reports.first("a ready report", lambda r: r.ready)
    assert ready.port is not None
    pid = runtime.pid("demo", "web-7c9d-x2k4p")
    assert pid is not None
    stopping = asyncio.create_task(runtime.stop("demo", "web-7c9d-x2k4p", 10))
    await reports.first("a terminating report", lambda r: r.message == "terminating" and not r.ready)
    assert (await get(ready.port))[0] == 200  # preStop: out of the endpoints, still answering
    assert not stopping.done()
    await stopping
    assert gone(pid)
    assert runtime.port("demo", "web-7c9d-x2k4p") is None
    with pytest.raises(aiohttp.ClientError):
        await get(ready.port)


async def test_stop_kills_a_process_that_ignores_sigterm_after_the_grace_period(
    reports: Reports, tmp_path: Path
) -> None:
    stubborn = [sys.executable, "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
                "time.sleep(120)"]
    runtime = ProcessRuntime(reports, command=stubborn, log_dir=tmp_path)
    try:
        await runtime.start(pod_object())
        pid = runtime.pid("demo", "web-7c9d-x2k4p")
        assert pid is not None
        log_file = tmp_path / "demo_web-7c9d-x2k4p.log"

        async def started() -> bool:
            return log_file.exists() and "up" in log_file.read_text()

        await wait_for(started, 15, "the stubborn process to install its SIGTERM handler")
        await runtime.stop("demo", "web-7c9d-x2k4p", 0.5)
        assert gone(pid)
    finally:
        await runtime.close()


async def test_crashing_process_is_reported_failed_with_its_output(
    runtime: ProcessRuntime, reports: Reports
) -> None:
    await runtime.start(pod_object(env={"ERROR_RATE": "lots"}))
    failed = await reports.first("a Failed report", lambda r: r.phase == "Failed")
    assert not failed.ready
    assert "code 2" in failed.message and "ERROR_RATE" in failed.message


async def test_pod_without_containers_is_reported_failed(runtime: ProcessRuntime, reports: Reports) -> None:
    await runtime.start({"metadata": {"name": "empty", "namespace": "demo"}, "spec": {"containers": []}})
    assert reports.items[-1].phase == "Failed" and "spec.containers" in reports.items[-1].message


async def test_close_kills_every_pod(runtime: ProcessRuntime, reports: Reports) -> None:
    await runtime.start(pod_object("a"))
    await runtime.start(pod_object("b"))
    await reports.first("both pods ready", lambda _: {r.name for r in reports.items if r.ready} == {"a", "b"})
    pids = [runtime.pid("demo", "a"), runtime.pid("demo", "b")]
    await runtime.close()
    assert all(pid is not None and gone(pid) for pid in pids)


async def test_stop_right_after_start_does_not_leave_the_process_running(
    runtime: ProcessRuntime, reports: Reports
) -> None:
    starting = asyncio.create_task(runtime.start(pod_object()))
    await asyncio.sleep(0)  # start is now spawning the process
    await runtime.stop("demo", "web-7c9d-x2k4p", 5)
    await starting
    assert runtime.pid("demo", "web-7c9d-x2k4p") is None
    assert not any(r.ready for r in reports.items)


async def test_missing_command_is_reported_failed(reports: Reports, tmp_path: Path) -> None:
    runtime = ProcessRuntime(reports, command=[str(tmp_path / "no-such-binary")], log_dir=tmp_path)
    try:
        await runtime.start(pod_object())
    finally:
        await runtime.close()
    assert reports.items[-1].phase == "Failed" and "no-such-binary" in reports.items[-1].message

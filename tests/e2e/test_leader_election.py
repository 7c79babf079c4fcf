"""Two `weir run --leader-elect` replicas: only the Lease holder acts (and is ready); when it is
SIGKILLed the standby takes over and finishes the release it was in."""

from __future__ import annotations

import signal
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.conftest import KubeTarget
from tests.e2e.harness import App, ControllerProcess, wait_for

pytestmark = pytest.mark.e2e


def get(process: ControllerProcess, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{process.port}{path}", timeout=2) as response:
            return int(response.status), str(response.read().decode())
    except urllib.error.HTTPError as error:
        return error.code, str(error.read().decode())


def ready(process: ControllerProcess) -> bool:
    return get(process, "/readyz")[0] == 200


@pytest.fixture
def replicas(kube: KubeTarget) -> Iterator[list[ControllerProcess]]:
    args = ["--leader-elect", "--leader-elect-namespace", kube.namespace, "--leader-elect-lease", "3"]
    running = [ControllerProcess(kube.kubeconfig_path, kube.namespace, args=args) for _ in range(2)]
    yield running
    for process in running:
        process.stop()


def test_only_the_leader_acts_and_the_standby_finishes_its_release(kube: KubeTarget,
                                                                     replicas: list[ControllerProcess]) -> None:
    app = App(kube.api_client, kube.namespace, "web")
    app.create()
    app.wait_phase("Idle")
    leader = wait_for(lambda: next((p for p in replicas if ready(p)), None), 20, "one replica to lead")
    standby = next(p for p in replicas if p is not leader)
    assert not ready(standby)
    assert "standby" in get(standby, "/readyz")[1]
    # Only the leader reconciled (the opt-in): the standby has not acted at all.
    assert "reconciled" in leader.logs()
    assert "reconciled" not in standby.logs()

    refused = urllib.request.Request(f"http://127.0.0.1:{standby.port}/alerts", data=b"{}", method="POST",
                                     headers={"Authorization": f"Bearer {standby.token}"})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(refused, timeout=2)
    assert answer.value.code == 503 and "standby" in answer.value.read().decode()

    app.set_image("example/web:2")
    wait_for(lambda: app.state().get("phase") not in (None, "Idle"), 20, "the release to start")
    leader.process.send_signal(signal.SIGKILL)
    leader.wait_exit(10)
    wait_for(lambda: ready(standby), 30, "the standby to take the lease over")
    state = app.wait_phase("Idle", timeout=60, revision=1)
    assert "promoted" in state["message"]
    primary = app.deployment("web-primary")
    assert primary is not None
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "example/web:2"
    promoted = [e for e in app.events() if e["reason"] == "Promoted"]
    assert len(promoted) == 1


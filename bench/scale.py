"""Scale: N opted-in Deployments and M releases at once on one controller, on the sandbox API (issue 9).

    python bench/scale.py [--n 1000] [--m N] [--namespaces 1] [--idle-window 30] [--workers 16] [--json]
    python bench/scale.py --sizes 100,300,1000        # several N one after the other, side by side

For each size: starts the sandbox API emulator as its own process (`weir sandbox up`; its workload
controllers make pods ready, no pod processes), creates N Deployments opted in with router nginx (each with
its Service and Ingress), waits for their pods, then starts `weir run` as its own process and prints
- init time: controller start -> every Deployment's `weir.dev/state` phase is Idle (one LIST a second);
- idle controller CPU (cores) and RSS over --idle-window seconds, from /proc; API requests/s the
  controller made in that window, by verb (counted by the emulator on /debug/requests, by User-Agent, so
  the bench's own requests are left out); the emulator's own CPU;
- M releases at once: every released Deployment's image changed in one burst (a share, --broken-share,
  gets a canary that never becomes ready and a 20 s progress deadline); API requests/s and controller CPU
  while they run; step lateness and deadline lateness (see `Timeline`); how the releases ended;
- alert -> canary weight 0: Alertmanager-style firing alerts posted to the controller's /alerts for a
  sample of releases at weight > 0, spread over the release, each timed until its canary Ingress weight
  reads 0 (watched);
- Prometheus queries per tick: n/a with the readiness judge (the default here); --prometheus URL is passed
  to the controller, but counting its queries needs a counting proxy in front of Prometheus (not built).

Every process it starts runs in its own session and is stopped on exit, Ctrl-C or SIGTERM. Progress
goes to stderr; figures to stdout (with --json: one JSON object instead). The work directory (kubeconfig,
controller and emulator logs) is kept and named at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
AGENT = "weir-bench-scale/1"  # the bench's own requests, left out of the controller's request rates
STATE = "weir.dev/state"
WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
TOKEN = "bench-scale-token"
STEP_HOLD_SECONDS = float(os.environ.get("WEIR_BENCH_STEP_SECONDS", "5"))  # each canary step's hold
WEIGHTS = [10, 50]
BROKEN_DEADLINE_SECONDS = 20.0
HEALTHY_DEADLINE = "60s"
ENDED = {"Idle", "RolledBack"}
JsonObject = dict[str, Any]


class BenchError(Exception):
    """The run cannot go on (a process died, a wait timed out); the message says what was seen."""


# ----- HTTP to the emulator ---------------------------------------------------------------------------


class Api:
    """Plain HTTP/1.1 to the emulator, one kept-alive connection per thread (the official client's
    pydantic round trips would make the bench, not the controller, the bottleneck at N = 1,000)."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self._local = threading.local()

    def connection(self, timeout: float | None = 60.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> tuple[int, Any]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"User-Agent": AGENT, "Content-Type": content_type, "Accept": "application/json"}
        for attempt in (1, 2):  # a kept-alive connection the server closed is retried once on a new one
            conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self.connection()
            try:
                conn.request(method, path, payload, headers)
                answer = conn.getresponse()
                data = answer.read()
                return answer.status, json.loads(data) if data else None
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def ok(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        status, answer = self.request(method, path, body, content_type)
        if status >= 300:
            raise BenchError(f"{method} {path}: {status} {str(answer)[:300]}")
        return answer

    def controller_requests(self) -> Counter[str]:
        """Requests served so far to every client but this bench, as 'verb resource' -> count."""
        counts: Counter[str] = Counter()
        for row in self.ok("GET", "/debug/requests")["requests"]:
            if row["user_agent"] != AGENT:
                counts[f"{row['verb']} {row['resource']}"] += row["count"]
        return counts


class Follow:
    """List + watch of one resource across namespaces on a thread, handing every object to `seen(obj, at)`;
    resumes from the last resourceVersion when the stream ends, relists on 410 Gone."""

    def __init__(self, api: Api, path: str, seen: Callable[[JsonObject, float, bool], None]) -> None:
        self.api, self.path, self.seen = api, path, seen
        self.restarts = 0
        self._stop = threading.Event()

    def start(self) -> Follow:
        version = self._list()
        threading.Thread(target=self._run, args=(version,), daemon=True, name=f"follow {self.path}").start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _list(self) -> str:
        listing = self.api.ok("GET", self.path)
        now = time.time()
        for obj in listing["items"]:
            self.seen(obj, now, False)
        return str(listing["metadata"]["resourceVersion"])

    def _run(self, version: str) -> None:
        while not self._stop.is_set():
            try:
                version = self._watch(version)
            except Exception as error:  # a cut stream: resume (or relist) and count it
                self.restarts += 1
                print(f"(watch {self.path} restarted: {error!r})", file=sys.stderr)
                time.sleep(0.2)

    def _watch(self, version: str) -> str:
        conn = self.api.connection(timeout=90)
        query = urllib.parse.urlencode({"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": version,
                                        "timeoutSeconds": "60"})
        try:
            conn.request("GET", f"{self.path}?{query}", headers={"User-Agent": AGENT})
            answer = conn.getresponse()
            for line in answer:
                if self._stop.is_set():
                    break
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR":
                    if obj.get("code") == 410:
                        return self._list()
                    raise BenchError(f"watch error: {obj}")
                version = obj["metadata"]["resourceVersion"]
                if event["type"] != "BOOKMARK":
                    self.seen(obj, time.time(), event["type"] == "DELETED")
        finally:
            conn.close()
        return version


# ----- processes --------------------------------------------------------------------------------------


class Processes:
    """Processes this bench started, each in its own session; all stopped on close."""

    def __init__(self) -> None:
        self._started: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                       start_new_session=True)
        self._started.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        with contextlib.suppress(ValueError):
            self._started.remove(process)

    def close(self) -> None:
        for process in reversed(list(self._started)):
            self.stop(process)


def cpu_seconds(session: int) -> float:
    """utime + stime of every live process in the session `session` (its leader's pid), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # fields from the 3rd (state) on
        if int(fields[3]) == session:  # field 6: session id
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / ticks


def memory_mib(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Meter:
    """CPU of two sessions (controller, emulator) and the controller's API requests over a window."""

    api: Api
    controller: int
    sandbox: int
    started: float = 0.0
    cpu: tuple[float, float] = (0.0, 0.0)
    requests: Counter[str] = field(default_factory=Counter)

    def begin(self) -> Meter:
        self.started = time.monotonic()
        self.cpu = (cpu_seconds(self.controller), cpu_seconds(self.sandbox))
        self.requests = self.api.controller_requests()
        return self

    def end(self) -> JsonObject:
        elapsed = time.monotonic() - self.started
        controller_cpu, sandbox_cpu = cpu_seconds(self.controller), cpu_seconds(self.sandbox)
        requests = self.api.controller_requests()
        requests.subtract(self.requests)
        by_verb: Counter[str] = Counter()
        for key, count in requests.items():
            by_verb[key.split()[0]] += count
        return {
            "seconds": round(elapsed, 1),
            "controller_cores": (controller_cpu - self.cpu[0]) / elapsed,
            "sandbox_cores": (sandbox_cpu - self.cpu[1]) / elapsed,
            "requests_per_second": sum(requests.values()) / elapsed,
            "requests_per_second_by_verb": {k: v / elapsed for k, v in by_verb.most_common() if v},
            "requests_per_second_top": {k: v / elapsed for k, v in requests.most_common(6) if v},
        }


# ----- the fleet of Deployments -----------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    namespace: str
    name: str
    released: bool
    broken: bool  # its release's canary never becomes ready (and its progress deadline is 20 s)

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    def rollout(self) -> JsonObject:
        deadline = f"{BROKEN_DEADLINE_SECONDS:.0f}s" if self.broken else HEALTHY_DEADLINE
        return {"router": "nginx", "ingress": self.name, "progress-deadline": deadline,
                "stages": [{"canary": {"weights": WEIGHTS, "interval": f"{STEP_HOLD_SECONDS:.0f}s"}}],
                "rollback-on-alerts": ['severity="page"']}

    def objects(self) -> list[tuple[str, JsonObject]]:
        name, ns = self.name, self.namespace
        return [
            (f"/api/v1/namespaces/{ns}/services", {
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
            (f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses", {
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
                "spec": {"ingressClassName": "nginx", "rules": [{"host": f"{name}.{ns}.bench.test", "http": {
                    "paths": [{"path": "/", "pathType": "Prefix",
                               "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]}}),
            (f"/apis/apps/v1/namespaces/{ns}/deployments", {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "labels": {"app": name},
                             "annotations": {"weir.dev/enabled": "true",
                                             "weir.dev/rollout": yaml.safe_dump(self.rollout())}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [container("bench/web:1")]}}}}),
        ]

    def release_patch(self) -> JsonObject:
        web = container("bench/web:2")
        if self.broken:  # the sandbox's timer runtime never makes such a pod ready
            web["readinessProbe"] = {"exec": {"command": ["false"]}, "periodSeconds": 1}
        return {"spec": {"template": {"spec": {"containers": [web]}}}}


def container(image: str) -> JsonObject:
    return {"name": "web", "image": image, "ports": [{"containerPort": 8080, "name": "http"}]}


def fleet(n: int, m: int, namespaces: int, broken_share: float) -> list[App]:
    stride = max(1, round(1 / broken_share)) if broken_share > 0 else 0
    return [App(f"scale-{i % namespaces}", f"web{i:04d}", i < m, i < m and stride > 0 and i % stride == 0)
            for i in range(n)]


def user_deployments(api: Api, apps: list[App]) -> Iterator[tuple[App, JsonObject]]:
    by_key = {app.key: app for app in apps}
    for obj in api.ok("GET", "/apis/apps/v1/deployments")["items"]:
        app = by_key.get((obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))
        if app is not None:
            yield app, obj


def state_of(obj: JsonObject) -> JsonObject:
    text = (obj["metadata"].get("annotations") or {}).get(STATE)
    try:
        return dict(json.loads(text)) if text else {}
    except ValueError:
        return {}


# ----- what happened to each release ------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    at: float  # wall clock when the bench's watch delivered this state
    phase: str
    revision: int
    step: int
    step_started_at: float | None
    phase_started_at: float | None
    release_started_at: float | None


class Timeline:
    """Every distinct release state of every Deployment, as the bench's watch saw it.

    Lateness is measured on the controller's own record rather than on Events: Event timestamps have
    one-second resolution and are written after the decision, while `weir.dev/state` carries the
    machine's clock (wall time, the same clock as the bench's) for when a step began
    (`step_started_at`) and when a phase was entered (`phase_started_at`). A step is due at its
    `step_started_at` + hold; the next state (step k+1, or phase Promoting) is when it was acted on. Two
    figures come out: "decided" (the machine's timestamp of the advance: queueing and reconcile delay) and
    "visible" (when the persisted state reached the bench's watch: adds the write and the watch). The
    state history is robust where the annotation alone is not: the advance overwrites `step_started_at`,
    so the due time of step k is taken from the state the watch saw before it.
    """

    def __init__(self, apps: list[App]) -> None:
        self.apps = {app.key: app for app in apps}
        self.states: dict[tuple[str, str], list[Seen]] = {key: [] for key in self.apps}
        self._lock = threading.Lock()

    def seen(self, obj: JsonObject, at: float, deleted: bool) -> None:
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if key not in self.apps or deleted:
            return
        s = state_of(obj)
        if not s:
            return
        state = Seen(at, str(s.get("phase")), int(s.get("revision") or 0), int(s.get("step") or 0),
                     s.get("step_started_at"), s.get("phase_started_at"), s.get("release_started_at"))
        with self._lock:
            history = self.states[key]
            last = history[-1] if history else None
            if last is None or (last.phase, last.revision, last.step, last.step_started_at) != (
                    state.phase, state.revision, state.step, state.step_started_at):
                history.append(state)

    def latest(self, key: tuple[str, str]) -> Seen | None:
        with self._lock:
            history = self.states[key]
            return history[-1] if history else None

    def ended(self, key: tuple[str, str], before: int) -> bool:
        latest = self.latest(key)
        return latest is not None and latest.revision > before and latest.phase in ENDED

    def release(self, key: tuple[str, str], before: int) -> list[Seen]:
        with self._lock:
            return [s for s in self.states[key] if s.revision > before]

    def step_lateness(self, key: tuple[str, str], before: int) -> list[tuple[float, float]]:
        """(decided, visible) lateness of every step acted on in this Deployment's release."""
        samples = []
        history = self.release(key, before)
        for previous, state in itertools.pairwise(history):
            if previous.phase != "Progressing" or previous.step_started_at is None:
                continue
            due = previous.step_started_at + STEP_HOLD_SECONDS
            if state.phase == "Progressing" and state.step == previous.step + 1 and state.step_started_at:
                samples.append((state.step_started_at - due, state.at - due))
            elif state.phase == "Promoting" and state.phase_started_at:
                samples.append((state.phase_started_at - due, state.at - due))
        return samples

    def rolled_back(self, key: tuple[str, str], before: int) -> Seen | None:
        return next((s for s in self.release(key, before) if s.phase == "RollingBack"), None)


class Weights:
    """Canary Ingress weights over time, from a watch: (time, weight) per Deployment name."""

    def __init__(self) -> None:
        self.history: dict[tuple[str, str], list[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def seen(self, obj: JsonObject, at: float, deleted: bool) -> None:
        name = obj["metadata"]["name"]
        if not name.endswith("-canary"):
            return
        try:
            weight = 0 if deleted else int((obj["metadata"].get("annotations") or {}).get(WEIGHT, "0"))
        except ValueError:
            return
        key = (obj["metadata"].get("namespace", ""), name[: -len("-canary")])
        with self._lock:
            history = self.history.setdefault(key, [])
            if not history or history[-1][1] != weight:
                history.append((at, weight))

    def current(self, key: tuple[str, str]) -> int:
        with self._lock:
            history = self.history.get(key)
            return history[-1][1] if history else 0

    def zero_after(self, key: tuple[str, str], since: float) -> float | None:
        with self._lock:
            return next((at for at, weight in self.history.get(key, []) if at >= since and weight == 0), None)


class Alerts:
    """Posts one firing alert every `gap` seconds for a release that is Progressing at weight > 0, until
    `count` are sent or `done` is set; each POST on its own thread, so a slow answer does not bunch them."""

    def __init__(self, url: str, candidates: list[App], timeline: Timeline, weights: Weights, count: int,
                 gap: float, seed: int) -> None:
        self.url, self.timeline, self.weights, self.count, self.gap = url, timeline, weights, count, gap
        self.candidates = list(candidates)
        random.Random(seed).shuffle(self.candidates)
        self.sent: dict[tuple[str, str], float] = {}
        self.failed: list[str] = []
        self.done = threading.Event()
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="alert")
        self._thread = threading.Thread(target=self._run, daemon=True, name="alerts")

    def start(self) -> Alerts:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.done.set()
        self._thread.join(5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        while len(self.sent) < self.count and not self.done.is_set():
            app = next((a for a in self.candidates if a.key not in self.sent and self.weights.current(a.key) > 0
                        and (self.timeline.latest(a.key) or Seen(0, "", 0, 0, None, None, None)).phase
                        == "Progressing"), None)
            if app is not None:
                self.sent[app.key] = time.time()
                self._pool.submit(self._post, app)
            self.done.wait(self.gap if app is not None else 0.05)

    def _post(self, app: App) -> None:
        body = {"version": "4", "status": "firing", "receiver": "weir", "alerts": [{
            "status": "firing", "labels": {"alertname": "BenchScale", "severity": "page",
                                           "namespace": app.namespace, "deployment": app.name},
            "annotations": {}, "startsAt": "2024-01-01T00:00:00Z"}]}
        parsed = urllib.parse.urlsplit(self.url)
        conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=30)
        try:
            conn.request("POST", parsed.path, json.dumps(body).encode(),
                         {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            answer = conn.getresponse()
            text = answer.read()
            if answer.status >= 300:
                self.failed.append(f"{app.name}: {answer.status} {text[:200]!r}")
        except Exception as error:
            self.failed.append(f"{app.name}: {error!r}")
        finally:
            conn.close()


# ----- one size ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    m: int | None
    namespaces: int
    idle_window: float
    settle: float
    workers: int
    broken_share: float
    alerts: int
    alert_gap: float
    init_timeout: float
    release_timeout: float
    prometheus: str | None
    threads: int
    ready_delay: float
    watch_window: int
    log_level: str
    controller_args: tuple[str, ...]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def spread(samples: list[float]) -> JsonObject | None:
    if not samples:
        return None
    return {"n": len(samples), "p50": percentile(samples, 0.5), "p99": percentile(samples, 0.99),
            "max": max(samples)}


def wait_file(path: Path, process: subprocess.Popen[bytes], timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if process.poll() is not None:
            raise BenchError(f"{what} exited with {process.returncode} before it was ready")
        time.sleep(0.05)
    raise BenchError(f"{what} not ready after {timeout:.0f}s")


def log_tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


class Run:
    """One size: emulator, fleet, controller, measurements. Use as a context manager (stops processes)."""

    def __init__(self, n: int, options: Options, workdir: Path) -> None:
        self.n, self.options = n, options
        self.m = n if options.m is None else min(options.m, n)
        self.workdir = workdir / f"n{n}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.apps = fleet(n, self.m, options.namespaces, options.broken_share)
        self.processes = Processes()
        self.figures: JsonObject = {"n": n, "m": self.m, "namespaces": options.namespaces,
                                    "workers": options.workers,
                                    "controller_args": " ".join(options.controller_args),
                                    "broken": sum(a.broken for a in self.apps)}
        self.controller: subprocess.Popen[bytes] | None = None
        self.follows: list[Follow] = []
        self.webhook = ""
        self.sandbox_pid = 0

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *_: object) -> None:
        for follow in self.follows:
            follow.stop()
        self.processes.close()

    def check_controller(self) -> None:
        if self.controller is not None and self.controller.poll() is not None:
            raise BenchError(f"the controller exited with {self.controller.returncode}; log tail:\n"
                             + log_tail(self.workdir / "controller.log"))

    def measure(self) -> JsonObject:
        api, sandbox = self.start_sandbox()
        self.create_fleet(api)
        before = self.initialize(api)
        if before is None:
            return self.figures
        assert self.controller is not None
        self.measure_idle(api, sandbox)
        self.measure_releases(api, sandbox, before)
        self.figures["controller_peak_rss_mib"] = memory_mib(self.controller.pid, "VmHWM")
        self.check_controller()
        return self.figures

    def start_sandbox(self) -> tuple[Api, int]:
        o = self.options
        process = self.processes.start(
            [sys.executable, "-m", "canary.cli", "sandbox", "up", "--dir", str(self.workdir), "--ready-delay",
             str(o.ready_delay), "--watch-window", str(o.watch_window)], self.workdir / "sandbox.log")
        wait_file(self.workdir / "kubeconfig", process, 60, "the sandbox API")
        config = yaml.safe_load((self.workdir / "kubeconfig").read_text())
        self.sandbox_pid = process.pid
        return Api(config["clusters"][0]["cluster"]["server"]), process.pid

    def create_fleet(self, api: Api) -> None:
        started = time.monotonic()
        for ns in sorted({a.namespace for a in self.apps}):
            api.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

        def create(app: App) -> None:
            for path, body in app.objects():
                api.ok("POST", path, body)

        with ThreadPoolExecutor(self.options.threads) as pool:
            list(pool.map(create, self.apps))
        created = time.monotonic() - started
        deadline = time.monotonic() + 120
        while sum((obj.get("status") or {}).get("readyReplicas") == 1 for _, obj in user_deployments(api, self.apps)) \
                < self.n:
            if time.monotonic() > deadline:
                raise BenchError("the sandbox did not make every pod ready within 120 s")
            time.sleep(0.5)
        say(f"N={self.n}: {3 * self.n} objects created in {created:.1f}s; pods ready after "
            f"{time.monotonic() - started:.1f}s")
        self.figures["create_seconds"] = created

    def start_controller(self) -> None:
        o = self.options
        (self.workdir / "token").write_text(TOKEN)
        command = [sys.executable, "-m", "canary.cli", "run", "--kubeconfig", str(self.workdir / "kubeconfig"),
                   "--listen", "127.0.0.1:0", "--port-file", str(self.workdir / "port"),
                   "--webhook-token-file", str(self.workdir / "token"), "--workers", str(o.workers),
                   "--log-level", o.log_level]
        for ns in sorted({a.namespace for a in self.apps}):
            command += ["--namespace", ns]
        if o.prometheus:
            command += ["--prometheus", o.prometheus]
        command += o.controller_args
        self.controller = self.processes.start(command, self.workdir / "controller.log")

    def initialize(self, api: Api) -> dict[tuple[str, str], int] | None:
        """Start the controller; poll (one LIST a second) until every Deployment is Idle. Returns each
        Deployment's revision then, or None when init did not finish in time."""
        started = time.monotonic()
        self.start_controller()
        assert self.controller is not None
        meter = Meter(api, self.controller.pid, self.sandbox_pid).begin()
        deadline = started + self.options.init_timeout
        while True:
            self.check_controller()
            states = {app.key: state_of(obj) for app, obj in user_deployments(api, self.apps)}
            idle = sum(s.get("phase") == "Idle" for s in states.values())
            if idle == self.n:
                break
            if time.monotonic() > deadline:
                phases = Counter(str(s.get("phase")) for s in states.values())
                say(f"N={self.n}: init not finished after {self.options.init_timeout:.0f}s: {dict(phases)}")
                self.figures["init_seconds"] = None
                self.figures["init_idle_at_timeout"] = idle
                return None
            time.sleep(1.0)
        self.figures["init_seconds"] = time.monotonic() - started
        self.figures["init"] = meter.end()
        say(f"N={self.n}: every Deployment Idle {self.figures['init_seconds']:.1f}s after the controller started")
        assert self.controller is not None
        port = wait_file(self.workdir / "port", self.controller, 30, "the controller's HTTP server")
        self.webhook = f"http://127.0.0.1:{port}/alerts"
        return {key: int(s.get("revision") or 0) for key, s in states.items()}

    def measure_idle(self, api: Api, sandbox: int) -> None:
        assert self.controller is not None
        time.sleep(self.options.settle)
        # "Idle" is a settled controller: every Deployment Idle, and the Events it recorded on the way sent.
        started = time.monotonic()
        while self._controller_busy():
            if time.monotonic() - started > self.options.init_timeout:
                raise BenchError("the controller never settled after init")
            time.sleep(0.5)
        self.figures["settle_seconds"] = self.figures["init_seconds"] + time.monotonic() - started
        say(f"N={self.n}: controller settled (queue empty, Events sent) {self.figures['settle_seconds']:.1f}s "
            "after it started")
        meter = Meter(api, self.controller.pid, sandbox).begin()
        time.sleep(self.options.idle_window)
        self.check_controller()
        self.figures["idle"] = meter.end()
        self.figures["idle_rss_mib"] = memory_mib(self.controller.pid)
        say(f"N={self.n}: idle window done")

    def _controller_busy(self) -> bool:
        """The controller's /metrics: anything queued, or Events not sent yet."""
        assert self.webhook is not None
        with urllib.request.urlopen(self.webhook.replace("/alerts", "/metrics"), timeout=10) as response:
            text = response.read().decode()
        busy = 0.0
        for line in text.splitlines():
            if line.startswith(("weir_work_queue_depth", "weir_events_pending")):
                busy += float(line.rsplit(" ", 1)[1])
        return busy > 0

    def measure_releases(self, api: Api, sandbox: int, before: dict[tuple[str, str], int]) -> None:
        assert self.controller is not None
        released = [a for a in self.apps if a.released]
        timeline, weights = Timeline(self.apps), Weights()
        self.follows = [Follow(api, "/apis/apps/v1/deployments", timeline.seen).start(),
                        Follow(api, "/apis/networking.k8s.io/v1/ingresses", weights.seen).start()]
        alerts = Alerts(self.webhook, [a for a in released if not a.broken], timeline, weights,
                        min(self.options.alerts, sum(not a.broken for a in released)), self.options.alert_gap, self.n)
        patched: dict[tuple[str, str], float] = {}

        def release(app: App) -> None:
            api.ok("PATCH", f"/apis/apps/v1/namespaces/{app.namespace}/deployments/{app.name}", app.release_patch(),
                   "application/merge-patch+json")
            patched[app.key] = time.time()

        meter = Meter(api, self.controller.pid, sandbox).begin()
        started = time.monotonic()
        alerts.start()
        with ThreadPoolExecutor(self.options.threads) as pool:
            list(pool.map(release, released))
        self.figures["release_patch_seconds"] = time.monotonic() - started
        say(f"N={self.n}: {len(released)} templates changed in {self.figures['release_patch_seconds']:.1f}s")
        deadline = started + self.options.release_timeout
        while not all(timeline.ended(a.key, before[a.key]) for a in released) and time.monotonic() < deadline:
            self.check_controller()
            time.sleep(0.5)
        self.figures["release"] = meter.end()
        self.figures["release_seconds"] = time.monotonic() - started
        alerts.stop()
        for follow in self.follows:
            follow.stop()
        self.figures["watch_restarts"] = sum(f.restarts for f in self.follows)
        self.summarize_releases(released, before, timeline, weights, alerts, patched)

    def summarize_releases(self, released: list[App], before: dict[tuple[str, str], int], timeline: Timeline,
                           weights: Weights, alerts: Alerts, patched: dict[tuple[str, str], float]) -> None:
        outcomes: Counter[str] = Counter()
        step_decided, step_visible, deadline_decided, deadline_visible, noticed = [], [], [], [], []
        for app in released:
            first = next(iter(timeline.release(app.key, before[app.key])), None)
            if first is not None and first.release_started_at:
                noticed.append(first.release_started_at - patched[app.key])
            latest = timeline.latest(app.key)
            ended = timeline.ended(app.key, before[app.key])
            kind = "broken" if app.broken else "alerted" if app.key in alerts.sent else "healthy"
            outcomes[f"{kind} {latest.phase if ended and latest else 'unfinished'}"] += 1
            for decided, visible in timeline.step_lateness(app.key, before[app.key]):
                step_decided.append(decided)
                step_visible.append(visible)
            back = timeline.rolled_back(app.key, before[app.key])
            if app.broken and back is not None:
                # Due: the template change (the PATCH's answer) + the progress deadline; the machine's own
                # clock counts from when it noticed the change (release_started_at).
                deadline_visible.append(back.at - (patched[app.key] + BROKEN_DEADLINE_SECONDS))
                if back.phase_started_at and back.release_started_at:
                    deadline_decided.append(back.phase_started_at - (back.release_started_at
                                                                     + BROKEN_DEADLINE_SECONDS))
        alert_latency, alert_missed = [], 0
        for key, sent in alerts.sent.items():
            zero = weights.zero_after(key, sent)
            rolled_back = timeline.rolled_back(key, before[key])
            if zero is None or rolled_back is None:
                alert_missed += 1  # never at 0, or at 0 only because the release was promoted first
            else:
                alert_latency.append(zero - sent)
        self.figures.update({
            "outcomes": dict(sorted(outcomes.items())),
            "release_start_delay": spread(noticed),
            "step_lateness_decided": spread(step_decided), "step_lateness_visible": spread(step_visible),
            "deadline_lateness_decided": spread(deadline_decided),
            "deadline_lateness_visible": spread(deadline_visible),
            "alerts_sent": len(alerts.sent), "alerts_not_effective": alert_missed,
            "alert_errors": alerts.failed[:5],
            "alert_to_weight_0": spread(alert_latency),
        })


# ----- report -----------------------------------------------------------------------------------------


def _s(value: Any) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _cores(window: JsonObject | None, key: str = "controller_cores") -> str:
    return "—" if not window else f"{window[key]:.3f} cores"


def _rate(window: JsonObject | None) -> str:
    if not window:
        return "—"
    verbs = ", ".join(f"{verb} {rate:.1f}" for verb, rate in window["requests_per_second_by_verb"].items())
    return f"{window['requests_per_second']:.1f} req/s" + (f" ({verbs})" if verbs else "")


def _lateness(spread_: JsonObject | None, unit: float = 1.0, suffix: str = "s") -> str:
    if not spread_:
        return "—"
    return (f"p50 {spread_['p50'] * unit:.2f} {suffix}, p99 {spread_['p99'] * unit:.2f} {suffix} "
            f"(max {spread_['max'] * unit:.2f}, n={spread_['n']})")


def _alerts(f: JsonObject) -> str:
    if "alerts_sent" not in f:
        return "—"
    text = _lateness(f.get("alert_to_weight_0"), 1000, "ms")
    return f"{text}; {f['alerts_sent']} sent, {f['alerts_not_effective']} not rolled back by it" + (
        f"; errors: {f['alert_errors']}" if f["alert_errors"] else "")


ROWS: list[tuple[str, Callable[[JsonObject], str]]] = [
    ("releases at once (never-ready canaries)", lambda f: f"{f['m']} ({f['broken']})"),
    ("init time (controller start -> all Idle)", lambda f: _s(f.get("init_seconds")) if "init_seconds" in f
     else "—" if "init_idle_at_timeout" not in f else f"never ({f['init_idle_at_timeout']} Idle)"),
    ("settled (queue empty, Events sent)", lambda f: _s(f.get("settle_seconds"))),
    ("controller CPU during init", lambda f: _cores(f.get("init"))),
    ("API requests/s during init", lambda f: _rate(f.get("init"))),
    ("idle controller CPU", lambda f: _cores(f.get("idle"))),
    ("idle controller RSS", lambda f: f"{f['idle_rss_mib']:.0f} MiB" if "idle_rss_mib" in f else "—"),
    ("API requests/s at idle", lambda f: _rate(f.get("idle"))),
    ("sandbox API CPU at idle", lambda f: _cores(f.get("idle"), "sandbox_cores")),
    ("release: all ended after", lambda f: _s(f.get("release_seconds"))),
    ("release outcomes", lambda f: ", ".join(f"{k}: {v}" for k, v in f.get("outcomes", {}).items()) or "—"),
    ("template change -> release started (state)", lambda f: _lateness(f.get("release_start_delay"))),
    ("API requests/s during release", lambda f: _rate(f.get("release"))),
    ("controller CPU during release", lambda f: _cores(f.get("release"))),
    ("sandbox API CPU during release", lambda f: _cores(f.get("release"), "sandbox_cores")),
    ("controller peak RSS", lambda f: f"{f['controller_peak_rss_mib']:.0f} MiB" if "controller_peak_rss_mib" in f
     else "—"),
    ("step lateness, decided", lambda f: _lateness(f.get("step_lateness_decided"))),
    ("step lateness, visible in the API", lambda f: _lateness(f.get("step_lateness_visible"))),
    ("deadline lateness, decided (vs controller's release start)",
     lambda f: _lateness(f.get("deadline_lateness_decided"))),
    ("deadline lateness, visible (vs template change)", lambda f: _lateness(f.get("deadline_lateness_visible"))),
    ("alert -> canary weight 0", _alerts),
    ("Prometheus queries per tick", lambda f: f.get("prometheus_queries", "n/a (readiness judge)")),
]


def report(results: list[JsonObject]) -> str:
    if len(results) == 1:
        f = results[0]
        title = (f"N = {f['n']} opted-in Deployments in {f['namespaces']} namespace(s), controller "
                 f"--workers {f['workers']} {f['controller_args']}").rstrip()
        return "\n".join([title] + [f"{label}: {render(f)}" for label, render in ROWS])
    width = max(len(label) for label, _ in ROWS)
    lines = [f"{'':{width}}  " + "  |  ".join(f"N = {f['n']}" for f in results)]
    lines += [f"{label:{width}}  " + "  |  ".join(render(f) for f in results) for label, render in ROWS]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="opted-in Deployments (default 1000)")
    parser.add_argument("--sizes", help="comma-separated N to run one after the other, e.g. 100,300,1000")
    parser.add_argument("--m", type=int, default=None, help="releases at once (default: N)")
    parser.add_argument("--namespaces", type=int, default=1, help="spread the Deployments over this many")
    parser.add_argument("--idle-window", type=float, default=30.0, metavar="S", help="idle measurement window")
    parser.add_argument("--settle", type=float, default=5.0, metavar="S", help="wait after init before it")
    parser.add_argument("--workers", type=int, default=16, help="the controller's --workers (its default: 16)")
    parser.add_argument("--broken-share", type=float, default=0.1, help="releases whose canary never gets ready")
    parser.add_argument("--alerts", type=int, default=50, help="releases rolled back by an alert")
    parser.add_argument("--alert-gap", type=float, default=0.2, metavar="S", help="seconds between alerts")
    parser.add_argument("--init-timeout", type=float, default=600.0, metavar="S")
    parser.add_argument("--release-timeout", type=float, default=600.0, metavar="S")
    parser.add_argument("--prometheus", help="passed to the controller (default: readiness judge)")
    parser.add_argument("--threads", type=int, default=16, help="the bench's client threads")
    parser.add_argument("--ready-delay", type=float, default=0.2, help="sandbox: seconds until a pod is ready")
    parser.add_argument("--watch-window", type=int, default=100_000, help="sandbox: watch events kept")
    parser.add_argument("--log-level", default="warning", help="the controller's")
    parser.add_argument("--controller-args", default="", metavar="ARGS",
                        help="more arguments for `weir run`, e.g. --controller-args='--qps 200 --burst 400'")
    parser.add_argument("--workdir", type=Path, help="where logs go (default: a new temporary directory)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end instead")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.n]
    options = Options(args.m, args.namespaces, args.idle_window, args.settle, args.workers, args.broken_share,
                      args.alerts, args.alert_gap, args.init_timeout, args.release_timeout, args.prometheus,
                      args.threads, args.ready_delay, args.watch_window, args.log_level,
                      tuple(shlex.split(args.controller_args)))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="weir-bench-scale-"))
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so every started process is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: list[JsonObject] = []
    code = 0
    for n in sizes:
        say(f"N={n}: starting (logs in {workdir / f'n{n}'})")
        with Run(n, options, workdir) as run:
            try:
                results.append(run.measure())
            except BenchError as error:
                say(f"N={n}: stopped: {error}")
                run.figures["error"] = str(error)
                results.append(run.figures)
                code = 1
        if not args.json:
            print(report([results[-1]]), flush=True)
    if args.json:
        print(json.dumps({"sizes": results, "workdir": str(workdir)}, default=str))
    elif len(results) > 1:
        print("\nside by side:\n" + report(results))
    say(f"logs kept in {workdir}")
    return code


if __name__ == "__main__":
    sys.exit(main())

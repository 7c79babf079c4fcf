"""`weir run`: the controller process (watches, workers, scheduler, HTTP server)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from kubernetes import client, config

from canary import logs
from canary.apiclient import ControllerApiClient
from canary.controller import Controller, Shard
from canary.judging import Judge, ReadinessJudge
from canary.leader import LeaderElector
from canary.server import build_app

log = logging.getLogger("weir.run")


def register(commands: Any) -> None:
    parser = commands.add_parser("run", help="run the controller")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster config, then ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--namespace", "-n", action="append", default=[],
                        help="watch this namespace (repeatable; default: all namespaces)")
    parser.add_argument("--listen", default="0.0.0.0:8080", help="HOST:PORT for health, metrics and alerts")
    parser.add_argument("--port-file", help="write the bound port here once listening (for --listen HOST:0)")
    parser.add_argument("--prometheus", help="Prometheus URL for canary analysis (default: readiness only)")
    parser.add_argument("--webhook-token-file", help="file holding the bearer token for /alerts")
    parser.add_argument("--webhook-token-secret", help="NAMESPACE/NAME[/KEY] of a Secret holding the token")
    parser.add_argument("--workers", type=int, default=16,
                        help="parallel reconciles (threads that mostly wait on the API server)")
    parser.add_argument("--resync", type=float, default=600.0,
                        help="seconds between re-reconciling every release from the cache (a safety net; 0: never)")
    parser.add_argument("--qps", type=float, default=300.0,
                        help="API requests per second, sustained (client-go's QPS; 0: unlimited)")
    parser.add_argument("--burst", type=int, default=600, help="API requests allowed in a burst")
    parser.add_argument("--shard", default=None,
                        help="i/n: manage only the releases whose namespace/name hashes to shard i of n (each "
                             "shard elects its own leader)")
    parser.add_argument("--leader-elect", action="store_true",
                        help="act only while holding a Lease (run several replicas safely)")
    parser.add_argument("--leader-elect-namespace", default=None,
                        help="namespace of the Lease (default: this pod's namespace, else default)")
    parser.add_argument("--leader-elect-name", default="weir-controller", help="name of the Lease")
    parser.add_argument("--leader-elect-lease", type=float, default=15.0,
                        help="seconds without renewal before a standby may take over (default 15)")
    parser.add_argument("--log-level", default="info")
    # Fault injection for the crash-safety tests: SIGKILL this process after N executed actions.
    parser.add_argument("--crash-after-actions", type=int, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def load_api(kubeconfig: str | None, context: str | None = None, qps: float = 50.0,
             burst: int = 100) -> client.ApiClient:
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(context=context, client_configuration=configuration)
    return ControllerApiClient(configuration, qps=qps, burst=burst)


def make_judge(prometheus: str | None) -> Judge:
    if not prometheus:
        return ReadinessJudge()
    from canary.analysis_judge import AnalysisJudge

    return AnalysisJudge(prometheus)


def crash_after(actions: int | None) -> Callable[[], None] | None:
    """A hook that SIGKILLs the process at its `actions`-th call (None: no hook)."""
    if actions is None:
        return None
    done = 0

    def count() -> None:
        nonlocal done
        done += 1
        if done >= actions:
            log.warning("fault injection: SIGKILL after action", extra={"actions": done})
            os.kill(os.getpid(), signal.SIGKILL)

    return count


def token_source(args: argparse.Namespace, api: client.ApiClient) -> Any:
    if args.webhook_token_file:
        path = Path(args.webhook_token_file)
        return lambda: path.read_text().strip() if path.exists() else None
    if args.webhook_token_secret:
        parts = args.webhook_token_secret.split("/")
        namespace, name, key = parts[0], parts[1], parts[2] if len(parts) > 2 else "token"
        core = client.CoreV1Api(api)

        def from_secret() -> str | None:
            import base64

            secret = core.read_namespaced_secret(name, namespace)
            value = (secret.data or {}).get(key)
            return base64.b64decode(value).decode().strip() if value else None

        return from_secret
    return lambda: None


def run(args: argparse.Namespace) -> int:
    logs.setup(args.log_level)
    api = load_api(args.kubeconfig, args.context, args.qps, args.burst)
    shard = Shard.parse(args.shard) if args.shard else None
    controller = Controller(api, args.namespace, judge=make_judge(args.prometheus), workers=args.workers,
                            resync_seconds=args.resync, after_action=crash_after(args.crash_after_actions),
                            shard=shard)
    host, _, port = args.listen.rpartition(":")
    elector = _elector(args, api)
    app = build_app(controller, token_source(args, api),
                    standby=None if elector is None else (lambda: not elector.leading.is_set()))
    stop = threading.Event()
    if elector is None:
        controller.start()
        log.info("controller started", extra={"namespaces": args.namespace or ["*"], "listen": args.listen})
    else:
        def lead() -> None:
            elector.run(on_started=controller.start)
            stop.set()  # lost the lease (or asked to stop): this process must not act any more

        threading.Thread(target=lead, name="leader-election", daemon=True).start()
        log.info("campaigning for the lease", extra={"identity": elector.identity, "listen": args.listen})
    try:
        asyncio.run(_serve(app, host or "0.0.0.0", int(port), args.port_file, stop))
    finally:
        controller.stop()
        if elector is not None:
            elector.stop()
            elector.release()
    # Losing the lease is a failure: exit non-zero so the kubelet restarts us as a candidate.
    return 1 if elector is not None and elector.lost.is_set() else 0


def _elector(args: argparse.Namespace, api: client.ApiClient) -> LeaderElector | None:
    if not args.leader_elect:
        return None
    namespace = args.leader_elect_namespace or os.environ.get("POD_NAMESPACE") or _pod_namespace() or "default"
    identity = f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    lease = args.leader_elect_lease
    name = args.leader_elect_name
    if args.shard:
        index, _, count = args.shard.partition("/")
        name = f"{name}-shard-{index}-of-{count}"  # each shard has its own Lease
    return LeaderElector(api, namespace, name, identity, lease_seconds=lease,
                         renew_deadline=lease * 2 / 3, retry_seconds=lease / 7.5)


def _pod_namespace() -> str | None:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.exists() else None


async def _serve(app: web.Application, host: str, port: int, port_file: str | None,
                 stopped: threading.Event) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server: Any = site._server  # aiohttp keeps the bound socket here; needed when listening on port 0
    bound = server.sockets[0].getsockname()[1] if server is not None and server.sockets else port
    if port_file:
        Path(port_file).write_text(str(bound))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(asyncio.to_thread(stopped.wait))
    watcher.add_done_callback(lambda _: stop.set())
    await stop.wait()
    stopped.set()  # ends the watcher thread when a signal stopped us
    await runner.cleanup()

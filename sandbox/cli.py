"""`weir sandbox up` (the API emulator in the foreground) and `weir demo` (implemented in sandbox.demo)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    sandbox = subparsers.add_parser("sandbox", help="a Kubernetes API emulator for tests and the demo")
    actions = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="run the emulator in the foreground; writes DIR/kubeconfig when ready")
    up.add_argument("--dir", required=True, type=Path, help="where to write the kubeconfig")
    up.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    up.add_argument("--ready-delay", type=float, default=0.2, metavar="S",
                    help="seconds until a new pod is Running and Ready (default 0.2)")
    up.add_argument("--watch-window", type=int, default=10_000, metavar="N",
                    help="watch events kept for resumption; older resourceVersions get 410 Gone")
    up.add_argument("--full", action="store_true",
                    help="also run pods as processes, nginx, Prometheus and Alertmanager (sandbox.full); "
                         "--port and --ready-delay do not apply; DIR/endpoints.json lists the URLs when ready")
    up.add_argument("--webhook-url", help="with --full: where Alertmanager sends alerts (Weir's /alerts endpoint)")
    up.add_argument("--webhook-token", help="with --full: the bearer token Alertmanager sends to the webhook")
    up.set_defaults(handler=run_up)

    demo = subparsers.add_parser("demo", help="run the demo: a healthy and a broken release on the sandbox")
    demo.add_argument("--timeout", type=float, default=300.0, metavar="S", help="give up after S seconds")
    demo.set_defaults(handler=run_demo)


async def _serve(args: argparse.Namespace) -> None:
    from .apiserver import Sandbox

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    kubeconfig = Path(args.dir) / "kubeconfig"
    with contextlib.suppress(FileNotFoundError):
        kubeconfig.unlink()  # a stale file would say "ready" before we are
    if args.full:
        from .full import FullSandbox

        async with FullSandbox(directory=args.dir, webhook_url=args.webhook_url,
                               webhook_token=args.webhook_token) as full:
            print(f"weir sandbox --full: {json.dumps(full.endpoints())}", flush=True)
            await stop.wait()
    else:
        async with Sandbox(directory=args.dir, port=args.port, ready_delay=args.ready_delay,
                           watch_window=args.watch_window) as sandbox:
            print(f"weir sandbox: API at {sandbox.url}; KUBECONFIG={sandbox.kubeconfig_path}", flush=True)
            await stop.wait()
    with contextlib.suppress(FileNotFoundError):
        kubeconfig.unlink()
    print("weir sandbox: stopped", flush=True)


def run_up(args: argparse.Namespace) -> int:
    try:
        asyncio.run(_serve(args))
    except OSError as error:
        print(f"weir sandbox: cannot listen on 127.0.0.1:{args.port}: {error}; pick another --port or omit it",
              file=sys.stderr)
        return 1
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from . import demo

    code: int = demo.main(args)
    return code

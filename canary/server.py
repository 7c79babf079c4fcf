"""The controller's HTTP face: /healthz, /readyz, /metrics and the Alertmanager webhook at /alerts."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import Counter
from collections.abc import Callable

from aiohttp import web

from canary.alerts import Alert, PayloadError, parse_payload
from canary.apiclient import safety_work
from canary.controller import Controller

log = logging.getLogger("weir.server")

MAX_BODY_BYTES = 1 << 20  # Alertmanager batches are small; anything near this is not one


def build_app(controller: Controller, token: Callable[[], str | None],
              standby: Callable[[], bool] | None = None) -> web.Application:
    """`token` returns the webhook's bearer token (read from a file or Secret), or None if unset;
    `standby` says whether another replica holds the leader Lease (a standby is not ready, so the
    Service sends alerts only to the leader)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if standby is not None and standby():
            return web.Response(status=503, text="standby: another replica holds the leader lease\n")
        if controller.synced.is_set():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="waiting for the first list of Deployments\n")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=render_metrics(controller), content_type="text/plain", charset="utf-8")

    async def alerts(request: web.Request) -> web.Response:
        expected = token()
        if not expected:
            return _problem(503, "the alert webhook is disabled: no bearer token is configured "
                                 "(--webhook-token-file or --webhook-token-secret)")
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
            return _problem(401, "missing or wrong bearer token in the Authorization header")
        if standby is not None and standby():
            # Alertmanager retries a 5xx; through the Service the retry reaches the leader.
            return _problem(503, "this replica is a standby: the leader acts on alerts")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _problem(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _problem(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _problem(400, f"body is not JSON: {exc}")
        try:
            parsed = parse_payload(body)
        except PayloadError as exc:
            return _problem(422, str(exc))
        # Recorded on the Deployments before the answer: a crash after a 200 loses no rollback.
        recorded, failed = await asyncio.to_thread(_take_alerts, controller, parsed)
        controller.stats.alerts_received += len(parsed)
        controller.stats.alerts_matched += len(recorded)
        log.info("alerts received", extra={"alerts": len(parsed), "rolling_back": recorded, "failed": failed})
        if failed:
            # Alertmanager resends the batch on a 5xx; what was recorded is not recorded twice.
            return web.json_response({"received": len(parsed), "rollingBack": recorded, "failed": failed},
                                     status=503)
        return web.json_response({"received": len(parsed), "rollingBack": recorded})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/alerts", alerts)
    return app


def _take_alerts(controller: Controller, alerts: list[Alert]) -> tuple[list[str], list[str]]:
    with safety_work():  # recording an alert does not wait behind routine steps for API tokens
        return controller.intake.take(alerts)


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def render_metrics(controller: Controller) -> str:
    stats = controller.stats
    phases = Counter(stats.phases.values())
    lines = [
        "# HELP weir_reconciles_total Reconciles run, by result.",
        "# TYPE weir_reconciles_total counter",
        f'weir_reconciles_total{{result="ok"}} {stats.reconciles - stats.reconcile_errors - stats.conflicts}',
        f'weir_reconciles_total{{result="error"}} {stats.reconcile_errors}',
        f'weir_reconciles_total{{result="conflict"}} {stats.conflicts}',
        "# HELP weir_reconcile_seconds_total Time spent reconciling.",
        "# TYPE weir_reconcile_seconds_total counter",
        f"weir_reconcile_seconds_total {stats.reconcile_seconds:.6f}",
        "# HELP weir_actions_total Actions executed on the cluster.",
        "# TYPE weir_actions_total counter",
        f"weir_actions_total {stats.actions}",
        "# HELP weir_alerts_received_total Alerts received on the webhook, and those that matched a release.",
        "# TYPE weir_alerts_received_total counter",
        f"weir_alerts_received_total {stats.alerts_received}",
        f"weir_alerts_matched_total {stats.alerts_matched}",
        "# HELP weir_releases Deployments managed by Weir, by phase.",
        "# TYPE weir_releases gauge",
    ]
    lines += [f'weir_releases{{phase="{phase}"}} {count}' for phase, count in sorted(phases.items())]
    safety, routine = controller.queue.depths()
    lines += [
        "# HELP weir_work_queue_depth Releases waiting for a worker, by lane.",
        "# TYPE weir_work_queue_depth gauge",
        f'weir_work_queue_depth{{lane="safety"}} {safety}',
        f'weir_work_queue_depth{{lane="routine"}} {routine}',
    ]
    events = controller.reconciler.cluster.events
    if events is not None:
        lines += [
            "# HELP weir_events_total Kubernetes Events recorded, by result.",
            "# TYPE weir_events_total counter",
            f'weir_events_total{{result="sent"}} {events.sent}',
            f'weir_events_total{{result="failed"}} {events.failed}',
            f'weir_events_total{{result="dropped"}} {events.dropped}',
            "# HELP weir_events_pending Kubernetes Events recorded but not sent yet.",
            "# TYPE weir_events_pending gauge",
            f"weir_events_pending {events.pending()}",
        ]
    retries = getattr(controller.api, "retries", None)
    if retries is not None:
        lines += ["# HELP weir_api_retries_total API requests repeated after a failure.",
                  "# TYPE weir_api_retries_total counter", f"weir_api_retries_total {retries}"]
    return "\n".join(lines) + "\n"

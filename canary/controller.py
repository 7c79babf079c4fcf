"""The running controller: Deployment watches feed a work queue, workers reconcile, apscheduler keeps
one job per active release at its analysis interval (plus precise wake-ups the machine asks for), and
alerts from the webhook jump the queue."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from kubernetes import watch
from kubernetes.client import ApiClient, AppsV1Api
from kubernetes.client.exceptions import ApiException

from canary.alerts import AlertIntake
from canary.annotated import read_annotations
from canary.annotations import ENABLED, PART_OF_LABEL, STATE
from canary.config import AlertMatcher
from canary.errorlog import RepeatedErrors
from canary.judging import Judge
from canary.kube import Conflict
from canary.reconciler import Reconciler
from canary.state import ALERTABLE_PHASES, Phase
from canary.workqueue import Key, WorkQueue

log = logging.getLogger("weir.controller")

WATCH_TIMEOUT_SECONDS = 300
ERROR_BACKOFF_SECONDS = 1.0


@dataclass
class Stats:
    """Counters for /metrics (names and units in canary/server.py)."""

    reconciles: int = 0
    reconcile_errors: int = 0
    conflicts: int = 0
    reconcile_seconds: float = 0.0
    actions: int = 0
    alerts_received: int = 0
    alerts_matched: int = 0
    phases: dict[Key, str] = field(default_factory=dict)


class Controller:
    def __init__(self, api: ApiClient, namespaces: Iterable[str] | None = None, judge: Judge | None = None,
                 workers: int = 2, resync_seconds: float = 30.0,
                 after_action: Callable[[], None] | None = None) -> None:
        self.api = api
        self.namespaces = list(namespaces) if namespaces else []
        self.reconciler = Reconciler(api, judge=judge, after_action=after_action)
        self.intake = AlertIntake(lookup=self._cached, rules_for=alert_rules, writer=self.reconciler.cluster,
                                  wake=lambda key: self.queue.add(key, urgent=True))
        self.errors = RepeatedErrors(log)
        self.queue = WorkQueue()
        self.workers = workers
        self.resync_seconds = resync_seconds
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.synced = threading.Event()
        self.stats = Stats()
        self._cache: dict[Key, dict[str, Any]] = {}
        self._cache_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._interval_jobs: dict[Key, float] = {}

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.scheduler.start()
        self.scheduler.add_job(self._resync, "interval", seconds=self.resync_seconds, id="resync")
        scopes: list[str | None] = list(self.namespaces) or [None]
        pending = len(scopes)
        lock = threading.Lock()

        def listed() -> None:
            nonlocal pending
            with lock:
                pending -= 1
                if pending == 0:
                    self.synced.set()

        for namespace in scopes:
            self._spawn(f"watch-{namespace or 'all'}", self._watch, namespace, listed)
        for i in range(self.workers):
            self._spawn(f"worker-{i}", self._work)

    def stop(self) -> None:
        self._stop.set()
        self.queue.close()
        self.scheduler.shutdown(wait=False)

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- watching -----------------------------------------------------------------------------------

    def _watch(self, namespace: str | None, listed: Any) -> None:
        apps = AppsV1Api(self.api)
        first = True
        while not self._stop.is_set():
            try:
                resource_version = self._list(apps, namespace)
                if first:
                    listed()
                    first = False
                self._stream(apps, namespace, resource_version)
            except Exception as exc:  # a broken watch must never kill the controller: relist
                log.warning("watch restarting", extra={"namespace": namespace, "error": str(exc)})
                self._stop.wait(ERROR_BACKOFF_SECONDS)

    def _list(self, apps: Any, namespace: str | None) -> str:
        if namespace:
            listed = apps.list_namespaced_deployment(namespace, _preload_content=False)
        else:
            listed = apps.list_deployment_for_all_namespaces(_preload_content=False)
        body = json.loads(listed.data)
        for item in body.get("items") or []:
            self._observe(item)
        return str(body["metadata"]["resourceVersion"])

    def _stream(self, apps: Any, namespace: str | None, resource_version: str) -> None:
        stream = watch.Watch()
        kwargs: dict[str, Any] = {"resource_version": resource_version, "timeout_seconds": WATCH_TIMEOUT_SECONDS,
                                  "allow_watch_bookmarks": True}
        func = apps.list_namespaced_deployment if namespace else apps.list_deployment_for_all_namespaces
        args = (namespace,) if namespace else ()
        try:
            for event in stream.stream(func, *args, **kwargs):
                if self._stop.is_set():
                    stream.stop()
                    return
                kind, raw = event["type"], event["raw_object"]
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    self._forget(raw)
                else:
                    self._observe(raw)
        except ApiException as exc:
            if exc.status != 410:
                raise
            log.info("watch expired (410); relisting", extra={"namespace": namespace})

    def _observe(self, deployment: Mapping[str, Any]) -> None:
        meta = deployment["metadata"]
        key = release_key(deployment)
        if key is None:
            with self._cache_lock:
                known = (meta["namespace"], meta["name"]) in self._cache
            if not known:
                return
            # Weir's annotations vanished from a Deployment it manages (e.g. `kubectl rollout undo` to a
            # revision from before opt-in): reconcile it, so the release is handed back, not orphaned.
            key = (meta["namespace"], meta["name"])
        if meta["name"] == key[1]:
            with self._cache_lock:
                self._cache[key] = dict(deployment)
        self.queue.add(key)

    def _forget(self, deployment: Mapping[str, Any]) -> None:
        key = release_key(deployment)
        if key is None:
            return
        if deployment["metadata"]["name"] == key[1]:
            with self._cache_lock:
                self._cache.pop(key, None)
        self.queue.add(key)

    def _resync(self) -> None:
        with self._cache_lock:
            keys = list(self._cache)
        for key in keys:
            self.queue.add(key)

    # --- working ------------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            key = self.queue.get(timeout=1.0)
            if key is None:
                continue
            try:
                self._reconcile(key)
            finally:
                self.queue.done(key)

    def _reconcile(self, key: Key) -> None:
        started = time.monotonic()
        try:
            outcome = self.reconciler.reconcile(*key)
        except Conflict:
            self.stats.conflicts += 1
            self.queue.add(key)  # someone wrote in between: decide again on fresh data
            return
        except Exception as exc:
            self.stats.reconcile_errors += 1
            self.errors.failed(key, exc)
            self._requeue_after(key, ERROR_BACKOFF_SECONDS)
            return
        finally:
            self.stats.reconciles += 1
            self.stats.reconcile_seconds += time.monotonic() - started
        self.errors.succeeded(key)
        self.stats.actions += outcome.actions
        if outcome.phase is None:
            self.stats.phases.pop(key, None)
        else:
            self.stats.phases[key] = outcome.phase
        if outcome.requeue_after is not None:
            if outcome.requeue_after <= 0:
                self.queue.add(key)
            else:
                self._requeue_after(key, outcome.requeue_after)
        self._keep_analysis_job(key, outcome.active, outcome.analysis_interval)

    def _requeue_after(self, key: Key, seconds: float) -> None:
        job_id = f"wake:{key[0]}/{key[1]}"
        run_at = _utc(time.time() + seconds)
        existing = self.scheduler.get_job(job_id)
        if existing is not None and existing.next_run_time is not None and existing.next_run_time <= run_at:
            return
        self.scheduler.add_job(self.queue.add, "date", run_date=run_at, args=[key], id=job_id,
                               replace_existing=True, misfire_grace_time=None)

    def _keep_analysis_job(self, key: Key, active: bool, interval: float | None) -> None:
        job_id = f"analysis:{key[0]}/{key[1]}"
        if active and interval:
            if self._interval_jobs.get(key) != interval:
                self.scheduler.add_job(self.queue.add, "interval", seconds=interval, args=[key], id=job_id,
                                       replace_existing=True)
                self._interval_jobs[key] = interval
        elif key in self._interval_jobs:
            self._interval_jobs.pop(key)
            if self.scheduler.get_job(job_id):
                self.scheduler.remove_job(job_id)

    # --- alerts -------------------------------------------------------------------------------------

    def _cached(self, key: Key) -> dict[str, Any] | None:
        with self._cache_lock:
            return self._cache.get(key)


def release_key(deployment: Mapping[str, Any]) -> Key | None:
    """The release a Deployment event concerns: the user's Deployment itself, or the owner of a primary."""
    meta = deployment.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    if labels.get(PART_OF_LABEL):
        return meta["namespace"], labels[PART_OF_LABEL]
    if ENABLED in annotations or STATE in annotations:
        return meta["namespace"], meta["name"]
    return None


def alert_rules(deployment: Mapping[str, Any]) -> tuple[tuple[AlertMatcher, ...], ...] | None:
    """The `rollback-on-alerts` matchers of a release a firing alert could roll back (with the
    configuration invalid, every alert about the workload counts); None: no such release."""
    annotated = read_annotations(deployment)
    state = annotated.state
    if state is None:
        return None
    releasing = state.phase in ALERTABLE_PHASES or (
        state.phase is Phase.INVALID and state.resume_phase in (Phase.PROGRESSING, Phase.PAUSED))
    if not releasing:
        return None
    return annotated.spec.rollback_on_alerts if annotated.spec is not None else ()


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)

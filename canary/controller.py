"""The running controller: informers (list + watch per kind) keep the cache every reconcile reads, their
events wake the releases they concern, workers reconcile, apscheduler keeps one job per active release at
its analysis interval plus the precise wake-ups (steps, deadlines) the machine asks for, and safety work
(alerts, rollbacks, deadlines) goes ahead of routine steps. An idle release costs no request."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from adapters.kube import CacheNotSynced
from adapters.nginx import INGRESS_INDEXES
from adapters.nginx_ingress import backend_services
from canary.alerts import AlertIntake
from canary.annotated import read_annotations
from canary.annotations import ENABLED, PART_OF_LABEL, STATE
from canary.apiclient import safety_work
from canary.config import AlertMatcher
from canary.errorlog import RepeatedErrors
from canary.informer import (
    CONFIGMAPS,
    DEPLOYMENTS,
    HTTPROUTES,
    INGRESSES,
    SERVICES,
    VIRTUALSERVICES,
    Informer,
    Kind,
    lister,
)
from canary.judging import Judge
from canary.kube import Conflict
from canary.reconciler import Reconciler
from canary.state import ALERTABLE_PHASES, Phase
from canary.store import Obj, Store
from canary.workqueue import Key, WorkQueue

log = logging.getLogger("weir.controller")

ERROR_BACKOFF_SECONDS = 1.0
CONFLICT_RETRY_SECONDS = 0.5
SAFETY_PHASES = frozenset({Phase.ROLLING_BACK.value, Phase.DEGRADED.value, Phase.FINALIZING.value})


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
                 workers: int = 16, resync_seconds: float = 600.0,
                 after_action: Callable[[], None] | None = None, shard: Shard | None = None) -> None:
        self.api = api
        self.namespaces = list(namespaces) if namespaces else []
        self.shard = shard or Shard(0, 1)
        self.store = Store(indexers={INGRESSES.key: dict(INGRESS_INDEXES)})
        self.reconciler = Reconciler(api, judge=judge, after_action=after_action, cache=self.store,
                                     background_events=True)
        self.intake = AlertIntake(lookup=self._cached, rules_for=alert_rules, writer=self.reconciler.cluster,
                                  wake=lambda key: self.queue.add(key, urgent=True))
        self.errors = RepeatedErrors(log)
        self.queue = WorkQueue()
        self.workers = workers
        self.resync_seconds = resync_seconds
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.synced = threading.Event()
        self.stats = Stats()
        self.informers: list[Informer] = []
        self._known: set[Key] = set()  # the releases this controller manages (opted in, or Weir's objects)
        self._known_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._interval_jobs: dict[Key, float] = {}

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.scheduler.start()
        scopes: list[str | None] = list(self.namespaces) or [None]
        for kind in self._kinds(scopes[0]):
            for namespace in scopes:
                informer = Informer(self.api, kind, namespace, self.store, self._handler(kind))
                self.store.register(kind.key, informer.synced)
                self.informers.append(informer)
                self._spawn(f"watch-{kind.plural}-{namespace or 'all'}", informer.run)
        self._spawn("start-workers", self._start_when_synced)

    def _kinds(self, scope: str | None) -> list[Kind]:
        """The kinds to watch: the built-in ones, and the route CRDs this cluster serves."""
        kinds = [DEPLOYMENTS, SERVICES, INGRESSES, CONFIGMAPS]
        for crd in (HTTPROUTES, VIRTUALSERVICES):
            try:
                lister(self.api, crd, scope)(limit=1, _preload_content=False)
                kinds.append(crd)
            except ApiException as exc:
                if exc.status not in (403, 404):
                    raise
        return kinds

    def _start_when_synced(self) -> None:
        """Workers start once every cache has been listed (client-go's WaitForCacheSync): a decision is
        never taken on an empty cache."""
        for informer in self.informers:
            while not informer.synced.wait(1.0):
                if self._stop.is_set():
                    return
        self.synced.set()
        log.info("caches synced", extra={"objects": {i.kind.key: self.store.count(i.kind.key) for i in self.informers}})
        if self.resync_seconds > 0:
            self.scheduler.add_job(self._resync, "interval", seconds=self.resync_seconds, id="resync")
        self._resync()
        for i in range(self.workers):
            self._spawn(f"worker-{i}", self._work)

    def stop(self) -> None:
        self._stop.set()
        self.queue.close()
        for informer in self.informers:
            informer.stop()
        self.scheduler.shutdown(wait=False)
        events = self.reconciler.cluster.events
        if events is not None:
            events.flush(2.0)  # what was decided is recorded before a clean exit
            events.close()

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- events -> releases -------------------------------------------------------------------------

    def _handler(self, kind: Kind) -> Callable[[str, Obj], None]:
        if kind is DEPLOYMENTS:
            return self._on_deployment
        if kind is CONFIGMAPS:
            return lambda _type, _obj: None  # only Weir writes them; nothing to react to
        return lambda _type, obj: self._on_route_object(kind, obj)

    def _on_deployment(self, event_type: str, deployment: Obj) -> None:
        meta = deployment.get("metadata") or {}
        own = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        key = release_key(deployment)
        with self._known_lock:
            if key is None and own in self._known:
                # Weir's annotations vanished from a Deployment it manages (e.g. `kubectl rollout undo` to a
                # revision from before opt-in): reconcile it, so the release is handed back, not orphaned.
                key = own
            if key is None or not self.shard.owns(key):
                return
            if key == own and event_type == "DELETED":
                self._known.discard(key)
            elif key == own:
                self._known.add(key)
        self.queue.add(key, urgent=self._urgent(key))

    def _on_route_object(self, kind: Kind, obj: Obj) -> None:
        """A Service, Ingress or route changed: wake the releases it belongs to or sends traffic to."""
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        names: set[str] = set()
        part_of = (meta.get("labels") or {}).get(PART_OF_LABEL)
        if part_of:
            names.add(str(part_of))
        elif kind is SERVICES:
            names.add(str(meta.get("name") or ""))
        elif kind is INGRESSES:
            names |= backend_services(obj)
        else:
            names |= _mentioned_names(obj.get("spec") or {})
        with self._known_lock:
            keys = [(namespace, name) for name in names if (namespace, name) in self._known]
        for key in keys:
            self.queue.add(key, urgent=self._urgent(key))

    def _urgent(self, key: Key) -> bool:
        return self.stats.phases.get(key) in SAFETY_PHASES

    def _resync(self) -> None:
        """Every release again, from the cache (no API request): a safety net, not how work is found."""
        with self._known_lock:
            keys = list(self._known)
        for key in keys:
            self.queue.add(key)

    # --- working ------------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            taken = self.queue.take(timeout=1.0)
            if taken is None:
                continue
            key, urgent = taken
            try:
                if urgent:
                    with safety_work():  # its requests do not wait behind routine work's for API tokens
                        self._reconcile(key)
                else:
                    self._reconcile(key)
            finally:
                self.queue.done(key)

    def _reconcile(self, key: Key) -> None:
        started = time.monotonic()
        try:
            outcome = self.reconciler.reconcile(*key)
        except Conflict:
            self.stats.conflicts += 1
            # Someone wrote in between: the watch brings the new version and wakes the key; this is the
            # fallback should the cache still be behind.
            self._requeue_after(key, CONFLICT_RETRY_SECONDS)
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
                self.queue.add(key, urgent=self._urgent(key))
            else:
                self._requeue_after(key, outcome.requeue_after, outcome.deadline_wake)
        self._keep_analysis_job(key, outcome.active, outcome.analysis_interval)

    def _requeue_after(self, key: Key, seconds: float, deadline: bool = False) -> None:
        # A deadline keeps its own wake-up: an earlier routine one must not stand in for it (it would queue
        # behind routine work and act on the deadline late).
        job_id = f"{'deadline' if deadline else 'wake'}:{key[0]}/{key[1]}"
        run_at = _utc(time.time() + seconds)
        existing = self.scheduler.get_job(job_id)
        if existing is not None and existing.next_run_time is not None and existing.next_run_time <= run_at:
            return
        # A wake-up is a step's or a deadline's time: it goes ahead of routine work when it is safety work.
        self.scheduler.add_job(self._wake, "date", run_date=run_at, args=[key, deadline], id=job_id,
                               replace_existing=True, misfire_grace_time=None)

    def _wake(self, key: Key, deadline: bool) -> None:
        self.queue.add(key, urgent=deadline or self._urgent(key))

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
        if not self.shard.owns(key):
            return None
        try:
            return self.store.peek(DEPLOYMENTS.key, *key)
        except CacheNotSynced:
            return None


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


def _mentioned_names(value: Any) -> set[str]:
    """Every `name` or `host` string in a route object's spec (the Services it may send traffic to)."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if key in ("name", "host") and isinstance(child, str):
                    found.add(child.split(".", 1)[0])
                else:
                    stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
    return found


@dataclass(frozen=True)
class Shard:
    """`--shard i/n`: this controller manages the releases whose key hashes to i (of n)."""

    index: int
    count: int

    def owns(self, key: Key) -> bool:
        if self.count <= 1:
            return True
        digest = hashlib.sha256(f"{key[0]}/{key[1]}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, _, count = text.partition("/")
        shard = cls(int(index), int(count))
        if shard.count < 1 or not 0 <= shard.index < shard.count:
            raise ValueError(f"--shard {text!r}: write i/n with 0 <= i < n, e.g. 0/3")
        return shard


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)

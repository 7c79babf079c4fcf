"""Leader election on a coordination.k8s.io/v1 Lease, so that only one controller acts at a time.

The rules are client-go's: a candidate takes the Lease when it does not exist, when it holds it
already, or when the holder has not renewed it for `leaseDurationSeconds` *as measured by this
candidate's own clock since it last saw the record change* (so clock skew between nodes cannot make a
live leader look expired). Every write carries the resourceVersion it read, so two candidates cannot
both win. A leader that cannot renew within `renew_deadline` stops acting: the process exits and
starts again as a candidate (crash-only; the reconciler is built to resume from any point).

`decide` is the pure part and is tested exhaustively; `LeaderElector` does the I/O on a thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiClient, CoordinationV1Api, V1Lease, V1LeaseSpec
from kubernetes.client.rest import ApiException

log = logging.getLogger("weir.leader")


@dataclass(frozen=True)
class Record:
    """What a Lease says about its holder (the part that must change for a holder to prove it lives)."""

    holder: str
    renew_time: str
    transitions: int


def decide(current: Record | None, seen_at: float, me: str, lease_seconds: float, now: float,
           stamp: str) -> Record | None:
    """The record a candidate should write after reading the Lease, or None to keep waiting.

    `current` is the Lease's record (None: no Lease yet), `seen_at` when this candidate first saw that
    exact record and `now`, both on its own monotonic clock; `stamp` is the wall time to write as
    renewTime. A record seen for the first time counts as just renewed."""
    if current is None:
        return Record(me, stamp, 0)
    if current.holder == me:
        return Record(me, stamp, current.transitions)
    if current.holder and now - seen_at < lease_seconds:
        return None
    return Record(me, stamp, current.transitions + 1)


def _record(lease: V1Lease) -> Record:
    spec = lease.spec or V1LeaseSpec()
    renew = spec.renew_time
    stamp = renew.isoformat() if isinstance(renew, datetime) else str(renew or "")
    return Record(spec.holder_identity or "", stamp, int(spec.lease_transitions or 0))


class LeaderElector:
    def __init__(self, api: ApiClient, namespace: str, name: str, identity: str, *, lease_seconds: float = 15.0,
                 renew_deadline: float = 10.0, retry_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < retry_seconds < renew_deadline < lease_seconds:
            raise ValueError("leader election: need 0 < retry < renew deadline < lease duration")
        self.leases: Any = CoordinationV1Api(api)  # bodies go as plain dicts, like the rest of our I/O
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_seconds, self.renew_deadline, self.retry_seconds = lease_seconds, renew_deadline, retry_seconds
        self.clock = clock
        self.leading = threading.Event()
        self.lost = threading.Event()
        self._seen: Record | None = None
        self._seen_at = 0.0
        self._stop = threading.Event()

    def run(self, on_started: Callable[[], None]) -> None:
        """Campaign until leading, call `on_started`, then renew; set `lost` if renewal fails too long."""
        while not self._stop.is_set():
            if self._try():
                break
            self._stop.wait(self.retry_seconds)
        if self._stop.is_set():
            return
        self.leading.set()
        log.info("leading", extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity})
        on_started()
        last_renewal = self.clock()
        while not self._stop.wait(self.retry_seconds):
            if self._try():
                last_renewal = self.clock()
            elif self.clock() - last_renewal >= self.renew_deadline:
                log.error("lost the lease: could not renew it in time",
                          extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity})
                self.leading.clear()
                self.lost.set()
                return

    def stop(self) -> None:
        self._stop.set()

    def _try(self) -> bool:
        try:
            lease = self.leases.read_namespaced_lease(self.name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                log.warning("cannot read the lease", extra={"status": error.status})
                return False
            lease = None
        except Exception as error:  # connection refused, timeouts: the API server is not reachable
            log.warning("cannot read the lease", extra={"error": str(error)})
            return False
        now = self.clock()
        current = _record(lease) if lease is not None else None
        if current != self._seen:
            self._seen, self._seen_at = current, now
        record = decide(current, self._seen_at, self.identity, self.lease_seconds, now, _stamp())
        if record is None:
            return False
        try:
            written = self._write(lease, record)
        except ApiException as error:
            if error.status not in (409, 422):
                log.warning("cannot write the lease", extra={"status": error.status})
            return False  # another candidate wrote first
        except Exception as error:
            log.warning("cannot write the lease", extra={"error": str(error)})
            return False
        self._seen, self._seen_at = _record(written), self.clock()
        return True

    def release(self) -> None:
        """Give the Lease up on a clean shutdown, so that a standby takes over at once."""
        if not self.leading.is_set():
            return
        self.leading.clear()
        try:
            lease = self.leases.read_namespaced_lease(self.name, self.namespace)
            held = _record(lease)
            if held.holder == self.identity:
                self._write(lease, Record("", _stamp(), held.transitions))
        except Exception as error:  # the lease then simply expires
            log.warning("could not release the lease", extra={"error": str(error)})

    def _write(self, lease: V1Lease | None, record: Record) -> Any:
        spec: dict[str, Any] = {"holderIdentity": record.holder, "leaseDurationSeconds": round(self.lease_seconds),
                                "renewTime": record.renew_time, "leaseTransitions": record.transitions}
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if lease is None:
            spec["acquireTime"] = record.renew_time
            return self.leases.create_namespaced_lease(self.namespace, {"metadata": metadata, "spec": spec})
        held = lease.spec is not None and lease.spec.holder_identity == record.holder
        spec["acquireTime"] = lease.spec.acquire_time if held and lease.spec is not None else record.renew_time
        # The resourceVersion read makes this a compare-and-swap: a candidate that lost the race gets 409.
        metadata["resourceVersion"] = lease.metadata.resource_version if lease.metadata is not None else None
        return self.leases.replace_namespaced_lease(self.name, self.namespace, {"metadata": metadata, "spec": spec})


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

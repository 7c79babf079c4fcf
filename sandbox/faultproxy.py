"""A reverse proxy in front of a Kubernetes API that can inject faults: the network a controller really meets.

It forwards every request, long-lived watch streams included, to a plain-HTTP upstream (the sandbox's
emulator) and, when told to, answers a share of requests with a Kubernetes Status (500 or 503) instead of
forwarding them, holds a share for a while first, and cuts watch streams after a random 1 to N seconds.
Every decision comes from one generator seeded at construction. It counts requests by verb and resource,
so tests and benchmarks can say what something cost in API requests.

    with FaultProxy(sandbox.url, Faults(fail_ratio=0.1, cut_watches_after=5), seed=7) as proxy:
        run_controller(proxy.kubeconfig_path)
        proxy.counts()      # {("list", "deployments"): 3, ("watch", "deployments"): 4, ...}
        proxy.injected()    # {"failed": 12, "delayed": 0, "cut": 3}

A cut watch either ends cleanly (the terminating chunk, as when the server's own timeout ends a watch)
or drops the connection mid-stream (the client sees an incomplete chunked body); `Faults.cut_style`
picks one or lets the generator choose per stream.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import socketserver
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from .kubeconfig import write_kubeconfig

CutStyle = Literal["end", "drop", "either"]

# Headers that describe one hop, not the message (RFC 9110 §7.6.1): never forwarded.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailer", "transfer-encoding", "upgrade", "host", "content-length"})
_TRUE = frozenset({"1", "t", "T", "true", "True", "TRUE"})
_FAILURE_REASONS = {500: "InternalError", 503: "ServiceUnavailable"}
_READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class Faults:
    """What to inject. The default injects nothing: the proxy is then a transparent pass-through.

    `fail_ratio`: share of non-watch requests answered 500 or 503 with a Status body, never forwarded.
    `delay_ratio`, `delay_seconds`: share of requests (watches included) held that long before forwarding.
    `cut_watches_after`: cut each watch stream after a random 1 to this many seconds (None: never).
    `cut_style`: "end" (clean end of stream), "drop" (connection dropped mid-stream) or "either".
    """

    fail_ratio: float = 0.0
    delay_ratio: float = 0.0
    delay_seconds: float = 2.0
    cut_watches_after: float | None = None
    cut_style: CutStyle = "either"

    def __post_init__(self) -> None:
        for name in ("fail_ratio", "delay_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, got {value}")
        if self.delay_seconds < 0:
            raise ValueError(f"Faults.delay_seconds must not be negative, got {self.delay_seconds}")
        if self.cut_watches_after is not None and self.cut_watches_after < 1.0:
            raise ValueError(f"Faults.cut_watches_after must be at least 1 second, got {self.cut_watches_after}")
        if self.cut_style not in ("end", "drop", "either"):
            raise ValueError(f"Faults.cut_style must be end, drop or either, got {self.cut_style!r}")


@dataclass(frozen=True)
class RequestKind:
    """A request as the API server sees it: a verb (get, list, watch, create, update, patch, delete,
    deletecollection) and a resource ("deployments", "deployments/status"); non-resource paths are
    "discovery" (/api, /apis/...) or their first segment ("version", "openapi")."""

    verb: str
    resource: str


def classify(method: str, path: str, query: str = "") -> RequestKind:
    """The verb and resource of a request to a Kubernetes API path."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return RequestKind(_http_verb(method, named=True), parts[0] if parts else "discovery")
    legacy_watch = rest[:1] == ["watch"]
    if legacy_watch:
        rest = rest[1:]
    if not rest:
        return RequestKind(_http_verb(method, named=True), "discovery")
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]  # namespaced: drop "namespaces/<ns>"; "namespaces/<name>" itself stays cluster-wide
    resource = rest[0] if len(rest) < 3 else f"{rest[0]}/{rest[2]}"
    named = len(rest) >= 2
    watching = legacy_watch or parse_qs(query).get("watch", [""])[0] in _TRUE
    if method == "GET" and watching:
        return RequestKind("watch", resource)
    return RequestKind(_http_verb(method, named), resource)


def _http_verb(method: str, named: bool) -> str:
    if method in ("GET", "HEAD"):
        return "get" if named else "list"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def status_body(code: int, kind: RequestKind) -> bytes:
    """A Kubernetes Status for an injected failure, as kube-apiserver writes one."""
    return json.dumps({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"fault injected by the proxy: {code} for {kind.verb} {kind.resource}",
        "reason": _FAILURE_REASONS[code], "code": code,
    }).encode()


@dataclass(frozen=True)
class _Plan:
    fail_with: int | None = None
    delay: float = 0.0
    cut_after: float | None = None
    drop: bool = False


class FaultProxy:
    """The proxy on 127.0.0.1 (a free port unless `port` is given); a context manager.

    `url` and `kubeconfig_path` (DIR/kubeconfig, DIR a temporary directory unless given) point at it.
    `faults` may be replaced while it runs; the generator keeps its sequence.
    """

    def __init__(self, upstream: str, faults: Faults | None = None, *, seed: int = 0,
                 directory: str | Path | None = None, port: int = 0) -> None:
        target = urlsplit(upstream)
        if target.scheme != "http" or not target.hostname or not target.port:
            raise ValueError(f"the upstream must be http://HOST:PORT, got {upstream!r}")
        self.upstream_host: str = target.hostname
        self.upstream_port: int = target.port
        self._faults = faults or Faults()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._injected: Counter[str] = Counter()
        self._open: set[socket.socket] = set()
        self.closing = threading.Event()
        self._directory = Path(directory) if directory else None
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.kubeconfig_path = Path()

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._directory is None:
            self._temp = tempfile.TemporaryDirectory(prefix="weir-faultproxy-")
            self._directory = Path(self._temp.name)
        self._server = _Server(("127.0.0.1", self._port), self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="weir-faultproxy", daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.kubeconfig_path = write_kubeconfig(self._directory / "kubeconfig", self.url)
        return self

    def close(self) -> None:
        self.closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:  # ends streams in flight and idle keep-alive connections on both sides
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    # --- what tests read ------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults

    def counts(self) -> dict[tuple[str, str], int]:
        """Requests received, by (verb, resource), injected failures included."""
        with self._lock:
            return dict(self._counts)

    def total(self, verb: str | None = None) -> int:
        """Requests received (of one verb if given)."""
        with self._lock:
            return sum(n for (v, _), n in self._counts.items() if verb is None or v == verb)

    def injected(self) -> dict[str, int]:
        """Faults injected so far: "failed" (answered 500/503), "delayed", "cut" (watch streams cut)."""
        with self._lock:
            return {key: self._injected[key] for key in ("failed", "delayed", "cut")}

    def reset_counts(self) -> None:
        """Start counting afresh (e.g. at the start of a measured window)."""
        with self._lock:
            self._counts.clear()
            self._injected.clear()

    # --- used by the handler --------------------------------------------------------------------------

    def _plan(self, kind: RequestKind) -> _Plan:
        """Count the request and draw its faults, in arrival order, from the seeded generator."""
        with self._lock:
            self._counts[(kind.verb, kind.resource)] += 1
            faults, draw = self._faults, self._random
            watch = kind.verb == "watch"
            fail_with = None
            if not watch and faults.fail_ratio and draw.random() < faults.fail_ratio:
                fail_with = draw.choice((500, 503))
                self._injected["failed"] += 1
            delay = 0.0
            if faults.delay_ratio and draw.random() < faults.delay_ratio:
                delay = faults.delay_seconds
                self._injected["delayed"] += 1
            cut_after, drop = None, False
            if watch and faults.cut_watches_after is not None:
                cut_after = draw.uniform(1.0, faults.cut_watches_after)
                drop = faults.cut_style == "drop" or (faults.cut_style == "either" and draw.random() < 0.5)
            return _Plan(fail_with, delay, cut_after, drop)

    def _cut(self, upstream: socket.socket) -> None:
        with self._lock:
            self._injected["cut"] += 1
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_RDWR)

    def _track(self, sock: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._open.add(sock)
            else:
                self._open.discard(sock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of new connections must not overflow a backlog of 5

    def __init__(self, address: tuple[str, int], proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # HTTPServer's would resolve a host name: not needed
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients expect
    disable_nagle_algorithm = True
    server: _Server
    _upstream: http.client.HTTPConnection | None = None

    def setup(self) -> None:
        super().setup()
        self.server.proxy._track(self.connection, True)

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # a client that goes away is no error of the proxy's
            super().handle()

    def finish(self) -> None:
        self._drop_upstream()
        self.server.proxy._track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request on stderr would drown the tests' output

    def _forward(self) -> None:
        proxy = self.server.proxy
        target = urlsplit(self.path)
        kind = classify(self.command, target.path, target.query)
        body = self._read_body()
        plan = proxy._plan(kind)
        if plan.delay and proxy.closing.wait(plan.delay):
            self.close_connection = True
            return
        if plan.fail_with is not None:
            self._answer(plan.fail_with, status_body(plan.fail_with, kind))
            return
        try:
            response = self._send_upstream(body)
        except (OSError, http.client.HTTPException) as error:
            self._answer(502, json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                          "message": f"proxy: upstream unreachable: {error}", "code": 502}).encode())
            return
        if response.chunked and self.command != "HEAD":
            self._stream(response, plan)
        else:
            self._relay(response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

    # --- request side ---------------------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else (b"" if self.command in ("POST", "PUT", "PATCH") else None)

    def _send_upstream(self, body: bytes | None) -> http.client.HTTPResponse:
        """Send on this client connection's upstream connection; a reused one the upstream has closed
        meanwhile is replaced once (as urllib3 does)."""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        for attempt in (0, 1):
            reused = self._upstream is not None
            if self._upstream is None:
                proxy = self.server.proxy
                self._upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port)
                self._upstream.connect()
                if self._upstream.sock is not None:
                    proxy._track(self._upstream.sock, True)
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                return self._upstream.getresponse()
            except (ConnectionError, http.client.RemoteDisconnected):
                self._drop_upstream()
                if not reused or attempt:
                    raise
        raise AssertionError("unreachable")

    def _drop_upstream(self) -> None:
        if self._upstream is not None:
            if self._upstream.sock is not None:
                self.server.proxy._track(self._upstream.sock, False)
            self._upstream.close()
            self._upstream = None

    # --- response side --------------------------------------------------------------------------------

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _start_response(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)

    def _relay(self, response: http.client.HTTPResponse) -> None:
        data = response.read()
        self._start_response(response)
        if self.command == "HEAD":
            length = response.getheader("Content-Length")
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if response.will_close:
            self._drop_upstream()

    def _stream(self, response: http.client.HTTPResponse, plan: _Plan) -> None:
        """Relay a chunked body chunk by chunk as it arrives; a planned cut shuts the upstream socket."""
        self._start_response(response)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        proxy = self.server.proxy
        upstream = self._upstream.sock if self._upstream is not None else None
        cut = threading.Event()
        timer: threading.Timer | None = None
        if plan.cut_after is not None and upstream is not None:
            def fire(sock: socket.socket = upstream) -> None:
                cut.set()
                proxy._cut(sock)
            timer = threading.Timer(plan.cut_after, fire)
            timer.daemon = True
            timer.start()
        complete = False
        try:
            while True:
                try:
                    data = response.read1(_READ_SIZE)
                except (OSError, http.client.HTTPException, ValueError):
                    break  # cut by us, the upstream went away, or the proxy is closing
                if not data:
                    complete = not cut.is_set()
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        except OSError:  # the client went away
            self.close_connection = True
            self._drop_upstream()
            return
        finally:
            if timer is not None:
                timer.cancel()
        if not complete:
            self._drop_upstream()
        if complete or (cut.is_set() and not plan.drop):
            with contextlib.suppress(OSError):
                self.wfile.write(b"0\r\n\r\n")
                return
        self.close_connection = True  # a drop: no terminating chunk, the client sees the stream broken

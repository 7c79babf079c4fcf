"""Requests served, counted by client (User-Agent), Kubernetes verb and resource.

`GET /debug/requests` answers the counts since the emulator started, so a benchmark or a test can take two
readings and subtract them (e.g. "an idle controller makes no request over 30 s"). Requests to `/debug/`
are not counted. Verbs are the API server's: get, list, watch, create, update, patch, delete,
deletecollection; a path that names no resource (discovery, /version, /healthz) counts under its HTTP
method with the resource `-`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

DEBUG_PATH = "/debug/requests"
NON_RESOURCE = "-"
_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RequestKind:
    verb: str  # get | list | watch | create | update | patch | delete | deletecollection, else the HTTP method
    resource: str  # plural, with "/<subresource>" when one is named; "-" for non-resource paths


def _resource_path(parts: list[str]) -> list[str] | None:
    """What follows /api/<version> or /apis/<group>/<version>; None for discovery and non-API paths."""
    if parts[:1] == ["api"] and len(parts) > 2:
        return parts[2:]
    if parts[:1] == ["apis"] and len(parts) > 3:
        return parts[3:]
    return None


def classify(method: str, path: str, watch: bool = False) -> RequestKind:
    """The verb and resource of a request, the way kube-apiserver names them in its audit log."""
    rest = _resource_path([p for p in path.split("/") if p])
    if rest is None:
        return RequestKind(method.lower(), NON_RESOURCE)
    if rest[0] == "namespaces" and len(rest) >= 3:
        resource, name, sub = rest[2], rest[3] if len(rest) > 3 else None, rest[4] if len(rest) > 4 else None
    else:
        resource, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
    if sub:
        resource = f"{resource}/{sub}"
    if method == "GET":
        verb = "get" if name is not None else "watch" if watch else "list"
    elif method == "DELETE":
        verb = "delete" if name is not None else "deletecollection"
    else:
        verb = _WRITE_VERBS.get(method, method.lower())
    return RequestKind(verb, resource)


class RequestCounter:
    """Counts every request that passes its middleware; serves the counts on `/debug/requests`."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, RequestKind]] = Counter()

    def record(self, user_agent: str, kind: RequestKind) -> None:
        self._counts[(user_agent, kind)] += 1

    def snapshot(self) -> dict[str, Any]:
        rows = [{"user_agent": agent, "verb": kind.verb, "resource": kind.resource, "count": count}
                for (agent, kind), count in sorted(self._counts.items(),
                                                   key=lambda item: (item[0][0], item[0][1].verb,
                                                                     item[0][1].resource))]
        return {"total": sum(self._counts.values()), "requests": rows}

    def middleware(self) -> Any:
        @web.middleware
        async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path == DEBUG_PATH and request.method == "GET":
                return web.json_response(self.snapshot())
            if not request.path.startswith("/debug/"):
                watch = request.query.get("watch") in _TRUE
                self.record(request.headers.get("User-Agent", ""), classify(request.method, request.path, watch))
            return await handler(request)

        return count_requests

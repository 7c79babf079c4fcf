"""Ingress objects to routes, with ingress-nginx's canary semantics.

A canary Ingress (annotation `nginx.ingress.kubernetes.io/canary: "true"`) adds a second backend to
the main Ingress that has the same host and path. A request goes to the canary backend when, in this
order (the first rule that decides wins):
1. `canary-by-header` names a header the request carries, and
   - `canary-by-header-value` is set: the header equals it exactly (other values fall through);
   - else `canary-by-header-pattern` is set: the header matches that regular expression;
   - else the header is `always` (canary) or `never` (main); other values fall through.
2. `canary-by-cookie` names a cookie the request carries whose value is `always` (canary) or
   `never` (main); other values fall through.
3. `canary-weight` out of `canary-weight-total` (default 100) of the remaining requests, at random.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.dataplane.endpoints import ServiceKey

ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io/"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")  # header and cookie names nginx can address as variables
_PATH = re.compile(r"^/[A-Za-z0-9._~%!$&'()*+,=:@/-]*$")  # no quotes, spaces, braces or semicolons
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")

Obj = Mapping[str, Any]


class IngressError(ValueError):
    """One field of one Ingress cannot be served; the message says which and how to fix it."""


@dataclass(frozen=True)
class CanaryPolicy:
    header: str | None = None
    header_value: str | None = None
    header_pattern: str | None = None
    cookie: str | None = None
    weight: int = 0
    weight_total: int = 100

    @property
    def weight_percent(self) -> float:
        return min(100.0, 100.0 * self.weight / self.weight_total)


@dataclass(frozen=True)
class Route:
    """One host + path and where its requests go."""

    host: str  # "" matches any host
    path: str
    path_type: str  # Exact | Prefix | ImplementationSpecific
    main: ServiceKey
    canary: ServiceKey | None = None
    policy: CanaryPolicy | None = None


@dataclass(frozen=True)
class _Path:
    host: str
    path: str
    path_type: str
    service: ServiceKey


def canary_policy(annotations: Mapping[str, str]) -> CanaryPolicy:
    """The canary rules of one canary Ingress; raises IngressError naming the annotation."""

    def text(key: str) -> str | None:
        value = annotations.get(ANNOTATION_PREFIX + key)
        return value.strip() if value and value.strip() else None

    def integer(key: str, default: int, low: int) -> int:
        raw = text(key)
        if raw is None:
            return default
        if not re.fullmatch(r"\d+", raw) or int(raw) < low:
            raise IngressError(f"{ANNOTATION_PREFIX}{key}: {raw!r} is not an integer >= {low}; set e.g. '10'")
        return int(raw)

    header, cookie = text("canary-by-header"), text("canary-by-cookie")
    for key, name in (("canary-by-header", header), ("canary-by-cookie", cookie)):
        if name is not None and not _TOKEN.match(name):
            raise IngressError(
                f"{ANNOTATION_PREFIX}{key}: {name!r} is not a plain name; use letters, digits, '-' or '_'"
            )
    pattern = text("canary-by-header-pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as error:
            raise IngressError(
                f"{ANNOTATION_PREFIX}canary-by-header-pattern: {pattern!r} is not a regular expression "
                f"({error})"
            ) from None
    return CanaryPolicy(
        header=header,
        header_value=text("canary-by-header-value"),
        header_pattern=pattern,
        cookie=cookie,
        weight=integer("canary-weight", 0, 0),
        weight_total=integer("canary-weight-total", 100, 1),
    )


def is_canary(ingress: Obj) -> bool:
    annotations = ingress.get("metadata", {}).get("annotations") or {}
    return str(annotations.get(ANNOTATION_PREFIX + "canary", "")).strip().lower() == "true"


def routes_from_ingresses(ingresses: Iterable[Obj]) -> tuple[tuple[Route, ...], tuple[str, ...]]:
    """All routes, and one problem message per rule that was ignored (the rest still serve).

    Conflicts resolve like ingress-nginx: the oldest Ingress (then by namespace/name) wins a host+path.
    """
    ordered = sorted(ingresses, key=_age_order)
    problems: list[str] = []
    mains: dict[tuple[str, str, str], _Path] = {}
    canaries: dict[tuple[str, str, str], tuple[_Path, CanaryPolicy]] = {}
    for ingress in ordered:
        where = _describe(ingress)
        try:
            annotations = ingress["metadata"].get("annotations") or {}
            policy = canary_policy(annotations) if is_canary(ingress) else None
            paths = _paths(ingress)
        except IngressError as error:
            problems.append(f"Ingress {where}: {error}; the Ingress is ignored")
            continue
        for path in paths:
            key = (path.host, path.path, path.path_type)
            if policy is None:
                mains.setdefault(key, path)
            else:
                canaries.setdefault(key, (path, policy))
    routes = []
    for key, main in mains.items():
        canary = canaries.pop(key, None)
        routes.append(Route(
            main.host, main.path, main.path_type, main.service,
            canary=canary[0].service if canary else None, policy=canary[1] if canary else None,
        ))
    for path, _ in canaries.values():
        where = f"host {path.host or '*'!r} path {path.path!r}"
        problems.append(f"canary Ingress for {where} has no main Ingress with that host and path; ignored")
    return tuple(routes), tuple(problems)


def _paths(ingress: Obj) -> list[_Path]:
    namespace = ingress["metadata"].get("namespace", "default")
    found = []
    for i, rule in enumerate((ingress.get("spec") or {}).get("rules") or []):
        host = rule.get("host") or ""
        if host and not _HOST.match(host):
            raise IngressError(f"spec.rules[{i}].host: {host!r} is not a DNS name")
        for j, item in enumerate((rule.get("http") or {}).get("paths") or []):
            field = f"spec.rules[{i}].http.paths[{j}]"
            path = item.get("path") or "/"
            if not _PATH.match(path):
                raise IngressError(f"{field}.path: {path!r} must start with '/' and hold no spaces or quotes")
            path_type = item.get("pathType") or "ImplementationSpecific"
            if path_type not in ("Exact", "Prefix", "ImplementationSpecific"):
                raise IngressError(f"{field}.pathType: {path_type!r}; use Exact or Prefix")
            service = (item.get("backend") or {}).get("service") or {}
            if not service.get("name"):
                raise IngressError(f"{field}.backend.service.name: missing; only Service backends are served")
            if path != "/" and path_type != "Exact":
                path = path.rstrip("/")
            found.append(_Path(host, path, path_type, ServiceKey(namespace, service["name"])))
    return found


def _age_order(ingress: Obj) -> tuple[str, str, str]:
    meta = ingress.get("metadata", {})
    return (meta.get("creationTimestamp") or "", meta.get("namespace", "default"), meta.get("name", ""))


def _describe(ingress: Obj) -> str:
    meta = ingress.get("metadata", {})
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"

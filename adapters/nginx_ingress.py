"""ingress-nginx canary Ingresses as pure functions: the copy of the user's Ingress, the canary
annotations a Routing renders to, and the Routing those annotations read back as.

Documented semantics this relies on (ingress-nginx user guide, "Canary"):
- `canary: "true"` marks an Ingress as the alternative backend for the same host and path.
- `canary-weight` (0..`canary-weight-total`, which defaults to 100) is the share of random requests.
- `canary-by-header: H` routes requests with `H: always` to the canary and `H: never` away from it;
  `canary-by-header-value: V` makes `H: V` the routing value instead; `canary-by-header-pattern`
  does the same with a PCRE regex and is ignored when a value is also set.
- `canary-by-cookie: C` routes on cookie `C` being `always` / `never`; there is no custom value.
- Precedence: header, then cookie, then weight. One header rule and one cookie rule per Ingress, and
  at most one canary Ingress per host and path.

A cookie match on a value other than `always` (a gray release to `region=eu`) has no cookie annotation,
so it is expressed as a header rule on the `Cookie` request header with a pattern that matches exactly
that cookie pair; it then takes the Ingress's one header rule.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from adapters.base import Match, Route, Routing
from adapters.kube import Obj
from adapters.ownership import claim

PREFIX = "nginx.ingress.kubernetes.io/"
CANARY = PREFIX + "canary"
WEIGHT = PREFIX + "canary-weight"
WEIGHT_TOTAL = PREFIX + "canary-weight-total"
BY_HEADER = PREFIX + "canary-by-header"
BY_HEADER_VALUE = PREFIX + "canary-by-header-value"
BY_HEADER_PATTERN = PREFIX + "canary-by-header-pattern"
BY_COOKIE = PREFIX + "canary-by-cookie"
ROUTING_ANNOTATIONS = (WEIGHT, WEIGHT_TOTAL, BY_HEADER, BY_HEADER_VALUE, BY_HEADER_PATTERN, BY_COOKIE)

# The legacy way to pick the ingress controller; the canary must be served by the same one.
LEGACY_CLASS = "kubernetes.io/ingress.class"

ALWAYS = "always"
COOKIE_HEADER = "Cookie"
_COOKIE_PAIR = re.compile(r"\(\^\|;\\s\*\)(?P<name>.+?)=(?P<value>.*)\(;\|\$\)")


def cookie_pair_pattern(cookie: str, value: str) -> str:
    """A regex over the Cookie header that matches requests carrying `cookie=value` exactly."""
    return f"(^|;\\s*){re.escape(cookie)}={re.escape(value)}(;|$)"


def _custom_cookie(match: Match) -> bool:
    return bool(match.cookie) and match.value not in (None, ALWAYS)


def is_canary(ingress: Mapping[str, Any]) -> bool:
    """Whether ingress-nginx treats `ingress` as a canary (the alternative backend), not a main Ingress."""
    annotations = (ingress.get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(CANARY) == "true")


def canary_ingress_name(ingress: str) -> str:
    return f"{ingress}-canary"


def _service_backend(backend: Mapping[str, Any] | None) -> str | None:
    service = (backend or {}).get("service") or {}
    name = service.get("name")
    return str(name) if name else None


def routes_to_service(ingress: Mapping[str, Any], service: str) -> bool:
    """Whether any rule (or the default backend) of `ingress` sends traffic to Service `service`."""
    spec = ingress.get("spec") or {}
    if _service_backend(spec.get("defaultBackend")) == service:
        return True
    return any(
        _service_backend(path.get("backend")) == service
        for rule in spec.get("rules") or []
        for path in (rule.get("http") or {}).get("paths") or []
    )


def backend_services(ingress: Mapping[str, Any]) -> set[str]:
    """Every Service `ingress` sends traffic to (an index of the controller's Ingress cache)."""
    spec = ingress.get("spec") or {}
    backends = [spec.get("defaultBackend")] + [
        path.get("backend") for rule in spec.get("rules") or [] for path in (rule.get("http") or {}).get("paths") or []]
    return {name for name in (_service_backend(b) for b in backends) if name}


def canary_hosts(ingress: Mapping[str, Any]) -> set[str]:
    """The hosts a canary Ingress serves ("" for any host); none for an Ingress that is not a canary."""
    if not is_canary(ingress):
        return set()
    return {host for host, _ in host_paths(ingress.get("spec") or {})}


def _retarget(backend: Mapping[str, Any], canary_service: str) -> dict[str, Any]:
    moved = copy.deepcopy(dict(backend))
    moved["service"]["name"] = canary_service
    return moved


def canary_spec(user_spec: Mapping[str, Any], service: str, canary_service: str) -> dict[str, Any]:
    """The user's Ingress spec restricted to the paths that reach `service`, pointed at
    `canary_service`. Other paths are left out: ingress-nginx allows one canary per host and path,
    and another release may own the canary for those."""
    spec: dict[str, Any] = {}
    if user_spec.get("ingressClassName"):
        spec["ingressClassName"] = user_spec["ingressClassName"]
    if _service_backend(user_spec.get("defaultBackend")) == service:
        spec["defaultBackend"] = _retarget(user_spec["defaultBackend"], canary_service)
    rules = []
    for rule in user_spec.get("rules") or []:
        paths = [
            {**copy.deepcopy(path), "backend": _retarget(path["backend"], canary_service)}
            for path in (rule.get("http") or {}).get("paths") or []
            if _service_backend(path.get("backend")) == service
        ]
        if paths:
            copied = {key: copy.deepcopy(value) for key, value in rule.items() if key != "http"}
            rules.append({**copied, "http": {"paths": paths}})
    if rules:
        spec["rules"] = rules
    if user_spec.get("tls"):
        spec["tls"] = copy.deepcopy(user_spec["tls"])
    return spec


def host_paths(spec: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (host, path) pairs an Ingress spec serves; "" stands for any host."""
    return {
        (rule.get("host") or "", path.get("path") or "/")
        for rule in spec.get("rules") or []
        for path in (rule.get("http") or {}).get("paths") or []
    }


def competing_canary(ingresses: list[Obj], own_name: str, spec: Mapping[str, Any]) -> str | None:
    """Another canary Ingress on one of `spec`'s hosts and paths: ingress-nginx applies only one."""
    wanted = host_paths(spec)
    for ingress in sorted(ingresses, key=lambda item: item["metadata"]["name"]):
        if ingress["metadata"]["name"] == own_name or not is_canary(ingress):
            continue
        if wanted & host_paths(ingress.get("spec") or {}):
            return str(ingress["metadata"]["name"])
    return None


def canary_ingress(user_ingress: Mapping[str, Any], route: Route) -> Obj:
    """A new canary Ingress for `user_ingress`, owned by the Deployment, sending nothing yet."""
    user_meta = user_ingress.get("metadata") or {}
    annotations = {CANARY: "true", **render_routing(Routing())}
    legacy_class = (user_meta.get("annotations") or {}).get(LEGACY_CLASS)
    if legacy_class:
        annotations[LEGACY_CLASS] = legacy_class
    ingress: Obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": canary_ingress_name(user_meta["name"]),
            "namespace": route.namespace,
            "annotations": annotations,
        },
        "spec": canary_spec(user_ingress.get("spec") or {}, route.name, route.canary_service),
    }
    return claim(ingress, route)


def sync_canary_ingress(existing: Obj, user_ingress: Mapping[str, Any], route: Route) -> Obj:
    """Follow edits of the user's Ingress (hosts, paths, TLS, class) and re-mark `existing` as a
    canary, leaving its routing annotations alone: traffic is `set`'s job."""
    wanted = canary_ingress(user_ingress, route)
    claim(existing, route)
    annotations = existing["metadata"].setdefault("annotations", {}) or {}
    existing["metadata"]["annotations"] = annotations
    annotations[CANARY] = "true"
    if LEGACY_CLASS in wanted["metadata"]["annotations"]:
        annotations[LEGACY_CLASS] = wanted["metadata"]["annotations"][LEGACY_CLASS]
    existing["spec"] = wanted["spec"]
    return existing


def unsupported_reason(routing: Routing) -> str | None:
    """Why ingress-nginx cannot express `routing`, or None if it can."""
    if not 0 <= routing.canary_weight <= 100:
        return f"canary weight {routing.canary_weight} is outside 0..100"
    headers = [match for match in routing.matches if match.header or _custom_cookie(match)]
    cookies = [match for match in routing.matches if match.cookie and not _custom_cookie(match)]
    if len(headers) > 1 or len(cookies) > 1:
        return ("ingress-nginx supports one header rule and one cookie rule per canary (a cookie with a "
                "custom value takes the header rule)")
    if any(match.header and match.cookie for match in routing.matches):
        return "a match names both a header and a cookie; use one match for each"
    if any(not match.header and not match.cookie for match in routing.matches):
        return "a match names neither a header nor a cookie"
    for header in headers:
        if header.value is not None and header.pattern is not None:
            return f"header {header.header} sets a value and a pattern (ingress-nginx ignores the pattern)"
    for match in routing.matches:
        if match.cookie and match.pattern is not None:
            return f"cookie {match.cookie} has a pattern; ingress-nginx can match a cookie value, not a pattern"
    return None


def render_routing(routing: Routing) -> dict[str, str]:
    """The routing annotations for `routing` (call `unsupported_reason` first)."""
    annotations = {WEIGHT: str(routing.canary_weight), WEIGHT_TOTAL: "100"}
    for match in routing.matches:
        if match.header:
            annotations[BY_HEADER] = match.header
            if match.value is not None:
                annotations[BY_HEADER_VALUE] = match.value
            elif match.pattern is not None:
                annotations[BY_HEADER_PATTERN] = match.pattern
        elif match.cookie and _custom_cookie(match):
            annotations[BY_HEADER] = COOKIE_HEADER
            annotations[BY_HEADER_PATTERN] = cookie_pair_pattern(match.cookie, match.value or "")
        elif match.cookie:
            annotations[BY_COOKIE] = match.cookie
    return annotations


def with_routing(annotations: Mapping[str, str], routing: Routing) -> dict[str, str]:
    """`annotations` with every routing annotation replaced by those for `routing`."""
    kept = {key: value for key, value in annotations.items() if key not in ROUTING_ANNOTATIONS}
    return {**kept, **render_routing(routing)}


def _weight_percent(annotations: Mapping[str, str]) -> int:
    weight = int(annotations.get(WEIGHT) or 0)
    total = int(annotations.get(WEIGHT_TOTAL) or 100)
    return round(100 * weight / total) if total > 0 else 0


def parse_routing(annotations: Mapping[str, str]) -> Routing:
    """What ingress-nginx does with a canary Ingress carrying `annotations`."""
    if annotations.get(CANARY) != "true":
        return Routing()
    matches = []
    header = annotations.get(BY_HEADER)
    if header:
        if annotations.get(BY_HEADER_VALUE):
            matches.append(Match(header=header, value=annotations[BY_HEADER_VALUE]))
        elif annotations.get(BY_HEADER_PATTERN):
            pair = _COOKIE_PAIR.fullmatch(annotations[BY_HEADER_PATTERN])
            if header.lower() == COOKIE_HEADER.lower() and pair:
                matches.append(Match(cookie=_unescape(pair["name"]), value=_unescape(pair["value"])))
            else:
                matches.append(Match(header=header, pattern=annotations[BY_HEADER_PATTERN]))
        else:
            matches.append(Match(header=header))
    cookie = annotations.get(BY_COOKIE)
    if cookie:
        matches.append(Match(cookie=cookie))
    return Routing(canary_weight=_weight_percent(annotations), matches=tuple(matches))


def _unescape(escaped: str) -> str:
    """Undo `re.escape` (it only ever adds a backslash before a character)."""
    return re.sub(r"\\(.)", r"\1", escaped, flags=re.DOTALL)

"""Istio VirtualServices as pure functions: the `istio` router's edits of the user's VirtualService.

As for HTTPRoutes (adapters.gateway_httproute), Weir's edits are recognisable from the object alone:
- a destination on the apex Service becomes a weighted pair `<name>-primary` / `<name>-canary`
  (Istio: weights of a route's destinations sum to 100);
- for each request match, a copy of the http route whose matches also require that header and whose
  only destination is `<name>-canary`, placed before it: Istio takes the first http route that
  matches, in order. Header names are lower-case in Istio matches; cookies are a regex on `cookie`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from adapters.base import Match, Routing
from adapters.gateway_httproute import ALWAYS, cookie_of, cookie_regex
from adapters.kube import Obj

GROUP = "networking.istio.io"
VERSION = "v1beta1"
PLURAL = "virtualservices"


def host_names(service: str, namespace: str) -> set[str]:
    """The spellings of a Service's host that Istio resolves from inside `namespace`."""
    return {
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    }


def is_destination(destination: Mapping[str, Any] | None, service: str, namespace: str) -> bool:
    return (destination or {}).get("host") in host_names(service, namespace)


def references_service(virtualservice: Mapping[str, Any], service: str, namespace: str) -> bool:
    return any(
        is_destination(target.get("destination"), service, namespace)
        for http in _http(virtualservice)
        for target in http.get("route") or []
    )


def _http(virtualservice: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((virtualservice.get("spec") or {}).get("http") or [])


def _renamed(target: Mapping[str, Any], service: str) -> dict[str, Any]:
    """`target` sent to Service `service`, keeping how its host was spelled (`web.ns.svc...`)."""
    moved = copy.deepcopy(dict(target))
    suffix = moved["destination"]["host"].partition(".")[1:]
    moved["destination"]["host"] = service + "".join(suffix)
    return moved


def header_condition(match: Match) -> tuple[str, dict[str, str]]:
    """The (header name, StringMatch) for one Weir match; a header with no value means `always`."""
    if match.cookie:
        return "cookie", {"regex": cookie_regex(match.cookie, match.value or ALWAYS)}
    name = str(match.header).lower()
    if match.pattern is not None:
        return name, {"regex": match.pattern}
    return name, {"exact": match.value or ALWAYS}


def match_of(name: str, condition: Mapping[str, str]) -> Match:
    if "regex" in condition:
        cookie = cookie_of(condition["regex"]) if name == "cookie" else None
        return cookie or Match(header=name, pattern=condition["regex"])
    return Match(header=name, value=condition.get("exact"))


class Names:
    """The three Services of one release as Istio hosts in one namespace."""

    def __init__(self, service: str, primary: str, canary: str, namespace: str) -> None:
        self.service, self.primary, self.canary, self.namespace = service, primary, canary, namespace

    def targets(self, http: Mapping[str, Any], service: str) -> list[dict[str, Any]]:
        return [t for t in http.get("route") or [] if is_destination(t.get("destination"), service, self.namespace)]

    def is_canary_only(self, http: Mapping[str, Any]) -> bool:
        route = http.get("route") or []
        return len(route) == 1 and bool(self.targets(http, self.canary))

    def is_split(self, http: Mapping[str, Any]) -> bool:
        return bool(self.targets(http, self.primary)) and bool(self.targets(http, self.canary))


def restored(virtualservice: Obj, names: Names) -> Obj:
    """`virtualservice` without Weir's edits."""
    result = copy.deepcopy(virtualservice)
    routes = []
    for http in _http(virtualservice):
        if names.is_canary_only(http):
            continue
        http = copy.deepcopy(http)
        if names.is_split(http):
            apex = _renamed(names.targets(http, names.primary)[0], names.service)
            apex.pop("weight", None)
            others = [
                t
                for t in http["route"]
                if not is_destination(t.get("destination"), names.primary, names.namespace)
                and not is_destination(t.get("destination"), names.canary, names.namespace)
            ]
            http["route"] = [apex, *others]
        routes.append(http)
    result.setdefault("spec", {})["http"] = routes
    return result


def _with_header(http: Mapping[str, Any], match: Match) -> list[dict[str, Any]]:
    name, condition = header_condition(match)
    alternatives = copy.deepcopy(http.get("match") or [{}])
    for alternative in alternatives:
        alternative["headers"] = {**alternative.get("headers", {}), name: condition}
    return alternatives


def routed(virtualservice: Obj, names: Names, routing: Routing) -> Obj:
    """`virtualservice` with Weir's edits for `routing`, always computed from the restored object."""
    base = restored(virtualservice, names)
    routes = []
    for http in _http(base):
        apexes = names.targets(http, names.service)
        if not apexes:
            routes.append(http)
            continue
        apex = {key: value for key, value in apexes[0].items() if key != "weight"}
        for match in routing.matches:
            only_canary = {**copy.deepcopy(http), "route": [_renamed(apex, names.canary)]}
            only_canary.pop("name", None)  # route names must stay unique
            only_canary["match"] = _with_header(http, match)
            routes.append(only_canary)
        split = [
            {**_renamed(apex, names.primary), "weight": 100 - routing.canary_weight},
            {**_renamed(apex, names.canary), "weight": routing.canary_weight},
        ]
        others = [t for t in http["route"] if t not in apexes]
        routes.append({**http, "route": [*split, *others]})
    base["spec"]["http"] = routes
    return base


def is_split(virtualservice: Mapping[str, Any], names: Names) -> bool:
    return any(names.is_split(http) for http in _http(virtualservice))


def parse_routing(virtualservice: Mapping[str, Any], names: Names) -> Routing:
    """The canary's weight on the first split route and the matches of the canary-only routes (the
    header each adds to the route it precedes)."""
    routes = _http(virtualservice)
    weight = next(
        (int(names.targets(http, names.canary)[0].get("weight", 0)) for http in routes if names.is_split(http)),
        0,
    )
    matches: list[Match] = []
    for index, http in enumerate(routes):
        if not names.is_canary_only(http):
            continue
        following = next((later for later in routes[index + 1 :] if names.is_split(later)), {})
        base_headers = ((following.get("match") or [{}])[0]).get("headers") or {}
        headers = ((http.get("match") or [{}])[0]).get("headers") or {}
        for name, condition in headers.items():
            if name not in base_headers or base_headers[name] != condition:
                found = match_of(name, condition)
                if found not in matches:
                    matches.append(found)
    return Routing(canary_weight=weight, matches=tuple(matches))


def shares_destinations(virtualservice: Mapping[str, Any], names: Names) -> bool:
    """Whether an http route sends to the apex and to other destinations too (their weights and
    Weir's must sum to 100, so Weir would change their shares)."""
    return any(
        len(http.get("route") or []) > 1 and bool(names.targets(http, names.service)) for http in _http(virtualservice)
    )

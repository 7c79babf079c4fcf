"""Gateway API HTTPRoutes as pure functions: the `gateway` router's edits of the user's HTTPRoute.

Weir declares two kinds of change to the user's route, and recognises them structurally, so that
read-back and undo need no memory beyond the object itself:
- a backendRef to the apex Service is split into a weighted pair `<name>-primary` / `<name>-canary`
  (documented semantics: a request goes to a backendRef with probability weight / sum of weights);
- for each request match of a stage, a copy of the rule whose matches also require that header,
  sending only to `<name>-canary`. More header matches make it the more specific rule, which the
  Gateway API gives precedence. Cookies are matched as a regular expression on the Cookie header.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from adapters.base import Match, Routing
from adapters.kube import Obj

GROUP = "gateway.networking.k8s.io"
VERSION = "v1"
PLURAL = "httproutes"

ALWAYS = "always"


def is_service_ref(ref: Mapping[str, Any], service: str) -> bool:
    """A backendRef to the core Service `service` in the route's own namespace (group "" and kind
    Service are the documented defaults)."""
    return (
        ref.get("name") == service
        and (ref.get("group") or "") == ""
        and (ref.get("kind") or "Service") == "Service"
        and not ref.get("namespace")
    )


def references_service(httproute: Mapping[str, Any], service: str) -> bool:
    return any(is_service_ref(ref, service) for rule in _rules(httproute) for ref in rule.get("backendRefs") or [])


def _rules(httproute: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((httproute.get("spec") or {}).get("rules") or [])


def cookie_regex(name: str, value: str) -> str:
    """Cookie `name` equal to `value` somewhere in a Cookie header, written to mean the same whether
    the proxy searches or (like Envoy) matches the whole value."""
    return f"^(.*;\\s*)?{re.escape(name)}={re.escape(value)}(;.*)?$"


_COOKIE = re.compile(r"\^\(\.\*;\\s\*\)\?(?P<name>.+?)=(?P<value>.+)\(;\.\*\)\?\$")


def cookie_of(regex: str) -> Match | None:
    """The cookie match a `cookie_regex` stands for, or None for any other regex."""
    found = _COOKIE.fullmatch(regex)
    return Match(cookie=_unescape(found["name"]), value=_unescape(found["value"])) if found else None


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def header_condition(match: Match) -> dict[str, str]:
    """The HTTPHeaderMatch for one Weir match (a header with no value means `always`)."""
    if match.cookie:
        return {
            "type": "RegularExpression",
            "name": "Cookie",
            "value": cookie_regex(match.cookie, match.value or ALWAYS),
        }
    if match.pattern is not None:
        return {"type": "RegularExpression", "name": str(match.header), "value": match.pattern}
    return {"type": "Exact", "name": str(match.header), "value": match.value or ALWAYS}


def match_of(condition: Mapping[str, Any]) -> Match:
    """The Weir match a header condition written by `header_condition` stands for."""
    name, value = str(condition["name"]), str(condition["value"])
    if condition.get("type") == "RegularExpression":
        cookie = cookie_of(value) if name.lower() == "cookie" else None
        return cookie or Match(header=name, pattern=value)
    return Match(header=name, value=value)


def _is_canary_only(rule: Mapping[str, Any], canary: str) -> bool:
    refs = rule.get("backendRefs") or []
    return len(refs) == 1 and is_service_ref(refs[0], canary)


def _split_refs(rule: Mapping[str, Any], primary: str, canary: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    refs = rule.get("backendRefs") or []
    primaries = [ref for ref in refs if is_service_ref(ref, primary)]
    canaries = [ref for ref in refs if is_service_ref(ref, canary)]
    return (primaries[0], canaries[0]) if primaries and canaries else None


def restored(httproute: Obj, service: str, primary: str, canary: str) -> Obj:
    """`httproute` without Weir's edits: match rules dropped, each split pair merged back into one
    backendRef to `service`."""
    restored_route = copy.deepcopy(httproute)
    rules = []
    for rule in _rules(httproute):
        if _is_canary_only(rule, canary):
            continue
        rule = copy.deepcopy(rule)
        pair = _split_refs(rule, primary, canary)
        if pair is not None:
            apex = {key: value for key, value in pair[0].items() if key != "weight"}
            apex["name"] = service
            others = [
                ref
                for ref in rule["backendRefs"]
                if not is_service_ref(ref, primary) and not is_service_ref(ref, canary)
            ]
            rule["backendRefs"] = [apex, *others]
        rules.append(rule)
    restored_route.setdefault("spec", {})["rules"] = rules
    return restored_route


def _with_header(rule: Mapping[str, Any], condition: dict[str, str]) -> list[dict[str, Any]]:
    # Every alternative of the rule must also require the header; no matches means "any request".
    alternatives = copy.deepcopy(rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}])
    for alternative in alternatives:
        alternative["headers"] = [*alternative.get("headers", []), condition]
    return alternatives


def routed(httproute: Obj, service: str, primary: str, canary: str, routing: Routing) -> Obj:
    """`httproute` with Weir's edits for `routing`, computed from the restored route so that the same
    routing always gives the same object (a repeated `set` writes nothing)."""
    base = restored(httproute, service, primary, canary)
    rules = []
    for rule in _rules(base):
        refs = rule.get("backendRefs") or []
        apex = next((ref for ref in refs if is_service_ref(ref, service)), None)
        if apex is None:
            rules.append(rule)
            continue
        for match in routing.matches:
            only_canary = {**copy.deepcopy(rule), "backendRefs": [{**apex, "name": canary}]}
            only_canary["backendRefs"][0].pop("weight", None)
            only_canary.pop("name", None)  # rule names must stay unique
            only_canary["matches"] = _with_header(rule, header_condition(match))
            rules.append(only_canary)
        split = [
            {**apex, "name": primary, "weight": 100 - routing.canary_weight},
            {**apex, "name": canary, "weight": routing.canary_weight},
        ]
        others = [ref for ref in refs if not is_service_ref(ref, service)]
        rules.append({**rule, "backendRefs": [*split, *others]})
    base["spec"]["rules"] = rules
    return base


def is_split(httproute: Mapping[str, Any], primary: str, canary: str) -> bool:
    return any(_split_refs(rule, primary, canary) is not None for rule in _rules(httproute))


def parse_routing(httproute: Mapping[str, Any], primary: str, canary: str) -> Routing:
    """The canary's share (percent of the first split rule's weights) and the match rules."""
    weight = 0
    for rule in _rules(httproute):
        pair = _split_refs(rule, primary, canary)
        if pair is not None:
            total = int(pair[0].get("weight", 1)) + int(pair[1].get("weight", 1))
            weight = round(100 * int(pair[1].get("weight", 1)) / total) if total else 0
            break
    matches: list[Match] = []
    for rule in _rules(httproute):
        if _is_canary_only(rule, canary):
            headers = ((rule.get("matches") or [{}])[0]).get("headers") or []
            if headers and match_of(headers[-1]) not in matches:
                matches.append(match_of(headers[-1]))
    return Routing(canary_weight=weight, matches=tuple(matches))


def shares_backends(httproute: Mapping[str, Any], service: str) -> bool:
    """Whether a rule sends to `service` and to other backends too (Weir would change their shares)."""
    return any(
        len(rule.get("backendRefs") or []) > 1
        and any(is_service_ref(ref, service) for ref in rule.get("backendRefs") or [])
        for rule in _rules(httproute)
    )

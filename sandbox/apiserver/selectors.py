"""Label selectors (equality- and set-based) and the field selectors the real server supports."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

_KEY = r"[A-Za-z0-9./_-]+"
_EQUALITY = re.compile(rf"^\s*(!?)\s*({_KEY})\s*(?:(==|=|!=)\s*([A-Za-z0-9._-]*))?\s*$")
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # = != in notin exists !exists
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        # != and notin also match objects that lack the key, as in Kubernetes.
        return not present or value not in self.values


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside `in (...)` value lists."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> LabelSelector:
    if not text or not text.strip():
        return LabelSelector()
    requirements = []
    for part in _split_top_level(text):
        set_match = _SET.match(part)
        if set_match:
            values = frozenset(v.strip() for v in set_match.group(3).split(",") if v.strip())
            requirements.append(Requirement(set_match.group(1), set_match.group(2), values))
            continue
        match = _EQUALITY.match(part)
        if not match:
            raise bad_request(f"unable to parse requirement: invalid label selector {part.strip()!r}")
        negated, key, operator, value = match.groups()
        if operator is None:
            requirements.append(Requirement(key, "!exists" if negated else "exists"))
        elif negated:
            raise bad_request(f"unable to parse requirement: {part.strip()!r}")
        else:
            requirements.append(Requirement(key, "!=" if operator == "!=" else "=", frozenset({value})))
    return LabelSelector(tuple(requirements))


def selector_from_label_selector_object(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A `metav1.LabelSelector` (matchLabels + matchExpressions), as Deployments carry."""
    if not selector:
        return LabelSelector()
    requirements = [Requirement(k, "=", frozenset({str(v)})) for k, v in (selector.get("matchLabels") or {}).items()]
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expression in selector.get("matchExpressions") or []:
        operator = operators.get(expression.get("operator", ""))
        if operator is None:
            raise bad_request(f"matchExpressions operator {expression.get('operator')!r} is not one of In, NotIn, "
                              "Exists, DoesNotExist")
        requirements.append(Requirement(expression["key"], operator, frozenset(expression.get("values") or [])))
    return LabelSelector(tuple(requirements))


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """`a=b,c in (d)`: how Scale.status.selector spells a Deployment's selector."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        op = expression.get("operator")
        values = ",".join(sorted(expression.get("values") or []))
        if op == "In":
            parts.append(f"{expression['key']} in ({values})")
        elif op == "NotIn":
            parts.append(f"{expression['key']} notin ({values})")
        elif op == "Exists":
            parts.append(expression["key"])
        elif op == "DoesNotExist":
            parts.append("!" + expression["key"])
    return ",".join(parts)


_FIELDS_EVERYWHERE = {"metadata.name", "metadata.namespace"}
_FIELDS_BY_KIND = {
    "Pod": {"status.phase", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "status.podIP"},
    "Event": {"involvedObject.kind", "involvedObject.name", "involvedObject.namespace", "involvedObject.uid",
              "reason", "type", "source"},
    "Secret": {"type"},
    "Namespace": {"status.phase"},
}


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    equal: bool
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        current: Any = obj
        for part in self.path.split("."):
            current = current.get(part) if isinstance(current, Mapping) else None
        actual = "" if current is None else str(current)
        return (actual == self.value) == self.equal


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def exact_name(self) -> str | None:
        """The one name the selector pins, so a lookup can skip the scan."""
        for requirement in self.requirements:
            if requirement.path == "metadata.name" and requirement.equal:
                return requirement.value
        return None


def parse_field_selector(text: str | None, kind: str) -> FieldSelector:
    if not text or not text.strip():
        return FieldSelector()
    allowed = _FIELDS_EVERYWHERE | _FIELDS_BY_KIND.get(kind, set())
    requirements = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = re.fullmatch(r"\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*", part)
        if not match:
            raise bad_request(f"invalid field selector: {part!r}")
        path, operator, value = match.groups()
        if path not in allowed:
            raise bad_request(f'field label not supported: {path}')
        requirements.append(FieldRequirement(path, operator != "!=", value))
    return FieldSelector(tuple(requirements))

"""The `weir.dev/rollout` annotation, parsed once into immutable values (DESIGN §1).

Every error names the field path (e.g. `weir.dev/rollout.stages[1].canary.weights[2]`) and the fix.
Every key is optional and has a documented default; `weir.dev/enabled: "true"` alone is a valid opt-in.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from adapters.base import Match, Routing
from analysis.queries import TEMPLATE_VARIABLES, TemplateError, check_template
from canary.annotations import ROLLOUT
from canary.durations import parse_duration

ROUTERS = ("service", "nginx", "gateway", "istio", "smi")
JUDGES = ("sequential", "mannwhitney", "threshold")
PRESETS = ("app", "nginx", "istio", "envoy")
BUILTIN_METRICS = ("error-rate", "latency")
DEFAULT_WEIGHTS = (10, 25, 50)
DEFAULT_STEP_SECONDS = 60.0
DEFAULT_ANALYSIS_INTERVAL = 30.0
DEFAULT_PROGRESS_DEADLINE = 600.0  # Kubernetes' default progressDeadlineSeconds


class ConfigError(ValueError):
    """Invalid configuration: where it is, what is wrong, and how to fix it."""

    def __init__(self, path: str, message: str, fix: str) -> None:
        super().__init__(f"{path}: {message}. Fix: {fix}")
        self.path = path
        self.message = message
        self.fix = fix


@dataclass(frozen=True)
class Step:
    """One traffic position, held for `hold_seconds` while the canary is judged."""

    routing: Routing
    hold_seconds: float
    label: str


@dataclass(frozen=True)
class Stage:
    kind: str  # ab | gray | canary | blue-green
    steps: tuple[Step, ...]
    path: str  # where it was declared, for errors found later (e.g. by the router)


@dataclass(frozen=True)
class CustomMetric:
    name: str
    query: str
    max: float | None = None
    min: float | None = None


@dataclass(frozen=True)
class AnalysisSpec:
    judge: str = "sequential"
    alpha: float = 0.01
    metrics: tuple[str, ...] = BUILTIN_METRICS
    custom: tuple[CustomMetric, ...] = ()
    interval_seconds: float = DEFAULT_ANALYSIS_INTERVAL
    preset: str | None = None  # None: follows the router (nginx -> nginx, istio -> istio, else app)
    prometheus: str | None = None  # None: the controller's --prometheus


@dataclass(frozen=True)
class AlertMatcher:
    label: str
    op: str  # = != =~ !~
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit


@dataclass(frozen=True)
class RolloutSpec:
    router: str | None = None  # None: detected from what exists
    ingress: str | None = None
    route: str | None = None  # gateway / istio: the HTTPRoute or VirtualService name
    stages: tuple[Stage, ...] | None = None  # None: the default ladder for the router
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)
    progress_deadline_seconds: float | None = None  # None: the Deployment's progressDeadlineSeconds
    rollback_on_alerts: tuple[tuple[AlertMatcher, ...], ...] = ()

    def stages_for(self, router: str) -> tuple[Stage, ...]:
        return self.stages if self.stages is not None else default_stages(router)


def default_stages(router: str) -> tuple[Stage, ...]:
    if router == "service":
        return (Stage("blue-green", (Step(Routing(100), DEFAULT_STEP_SECONDS, "blue-green"),), "default"),)
    return (_weight_stage(DEFAULT_WEIGHTS, DEFAULT_STEP_SECONDS, "default"),)


def flatten(stages: Sequence[Stage]) -> tuple[Step, ...]:
    return tuple(step for stage in stages for step in stage.steps)


def parse_rollout(annotations: Mapping[str, str] | None) -> RolloutSpec:
    """Parse the `weir.dev/rollout` annotation (absent or empty means all defaults)."""
    raw = (annotations or {}).get(ROLLOUT, "")
    if not raw or not raw.strip():
        return RolloutSpec()
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(ROLLOUT, f"is not valid YAML ({exc})", "write a YAML mapping as in the README") from exc
    if doc is None:
        return RolloutSpec()
    root = _Node(doc, ROLLOUT)
    root.keys({"router", "ingress", "route", "stages", "analysis", "progress-deadline", "rollback-on-alerts"})
    router = root.opt_choice("router", ROUTERS)
    stages = None
    if root.has("stages"):
        stages = tuple(_parse_stage(node) for node in root.child("stages").items(min_len=1))
    return RolloutSpec(
        router=router,
        ingress=root.opt_name("ingress"),
        route=root.opt_name("route"),
        stages=stages,
        analysis=_parse_analysis(root.child("analysis")) if root.has("analysis") else AnalysisSpec(),
        progress_deadline_seconds=root.opt_duration("progress-deadline"),
        rollback_on_alerts=tuple(
            _parse_matchers(node) for node in root.child("rollback-on-alerts").items()
        ) if root.has("rollback-on-alerts") else (),
    )


def _parse_stage(node: _Node) -> Stage:
    mapping = node.mapping()
    kinds = ("ab", "gray", "canary", "blue-green")
    if len(mapping) != 1:
        raise ConfigError(node.path, "a stage is a mapping with exactly one key",
                          f"write one of {', '.join(kinds)}, e.g. '- canary: {{weights: [10, 50], interval: 1m}}'")
    kind = next(iter(mapping))
    body = node.child(kind)
    if kind not in kinds:
        raise ConfigError(body.path, f"unknown stage type {kind!r}", _suggest(kind, kinds))
    if kind == "canary":
        body.keys({"weights", "step-weight", "max-weight", "interval"})
        interval = body.opt_duration("interval") or DEFAULT_STEP_SECONDS
        if body.has("weights"):
            if body.has("step-weight") or body.has("max-weight"):
                raise ConfigError(body.path, "weights and step-weight/max-weight are alternatives",
                                  "give either weights: [...] or step-weight and max-weight")
            weights = tuple(w.weight() for w in body.child("weights").items(min_len=1))
            for i in range(1, len(weights)):
                if weights[i] <= weights[i - 1]:
                    raise ConfigError(f"{body.path}.weights[{i}]", "weights must increase",
                                      f"list them in increasing order, e.g. {sorted(set(weights))}")
        else:
            step = body.child("step-weight").weight() if body.has("step-weight") else 10
            top = body.child("max-weight").weight() if body.has("max-weight") else 50
            if top < step:
                raise ConfigError(f"{body.path}.max-weight", f"{top} is below step-weight {step}",
                                  "make max-weight at least step-weight")
            weights = tuple(range(step, top + 1, step))
        return _weight_stage(weights, interval, body.path)
    if kind == "blue-green":
        body.keys({"duration"})
        hold = body.opt_duration("duration") or DEFAULT_STEP_SECONDS
        return Stage(kind, (Step(Routing(100), hold, "blue-green"),), body.path)
    body.keys({"header", "cookie", "value", "pattern", "duration"})
    match = _parse_match(body)
    hold = body.opt_duration("duration") or DEFAULT_STEP_SECONDS
    what = f"header {match.header}" if match.header else f"cookie {match.cookie}"
    detail = f"={match.value}" if match.value else (f"~{match.pattern}" if match.pattern else "")
    return Stage(kind, (Step(Routing(0, (match,)), hold, f"{kind} {what}{detail}"),), body.path)


def _weight_stage(weights: Sequence[int], hold: float, path: str) -> Stage:
    steps = tuple(Step(Routing(w), hold, f"canary {w}%") for w in weights)
    return Stage("canary", steps, path)


def _parse_match(body: _Node) -> Match:
    header, cookie = body.opt_str("header"), body.opt_str("cookie")
    if (header is None) == (cookie is None):
        raise ConfigError(body.path, "needs exactly one of header or cookie",
                          "write e.g. {header: x-canary, value: always} or {cookie: beta}")
    value, pattern = body.opt_str("value"), body.opt_str("pattern")
    if value is not None and pattern is not None:
        raise ConfigError(body.path, "value and pattern are alternatives", "keep one of them")
    if pattern is not None:
        if cookie is not None:
            raise ConfigError(f"{body.path}.pattern", "cookie matches take a value, not a pattern",
                              "use value, or match the header instead")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{body.path}.pattern", f"is not a valid regular expression ({exc})",
                              "fix the regular expression") from exc
    for name, where in ((header, "header"), (cookie, "cookie")):
        if name is not None and not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
            raise ConfigError(f"{body.path}.{where}", f"{name!r} is not a valid {where} name",
                              "use letters, digits and dashes")
    return Match(header=header, cookie=cookie, value=value, pattern=pattern)


def _parse_analysis(node: _Node) -> AnalysisSpec:
    node.keys({"judge", "alpha", "metrics", "interval", "preset", "prometheus"})
    alpha = 0.01
    if node.has("alpha"):
        alpha = node.child("alpha").number()
        if not 0 < alpha < 0.5:
            raise ConfigError(f"{node.path}.alpha", f"{alpha} is out of range",
                              "use a false-rollback budget between 0 and 0.5, e.g. 0.01")
    builtins: list[str] = []
    custom: list[CustomMetric] = []
    if node.has("metrics"):
        for item in node.child("metrics").items(min_len=1):
            if isinstance(item.value, str):
                if item.value not in BUILTIN_METRICS:
                    raise ConfigError(item.path, f"unknown metric {item.value!r}",
                                      _suggest(item.value, BUILTIN_METRICS) + ", or give {name, query, max|min}")
                builtins.append(item.value)
            else:
                item.keys({"name", "query", "max", "min"})
                low = item.child("min").number() if item.has("min") else None
                high = item.child("max").number() if item.has("max") else None
                if low is None and high is None:
                    raise ConfigError(item.path, "a custom metric needs max or min",
                                      "add max: <highest acceptable value> or min: <lowest>")
                name, query = item.child("name").string(), item.child("query").string()
                if name in BUILTIN_METRICS or any(m.name == name for m in custom):
                    raise ConfigError(f"{item.path}.name", f"the metric name {name!r} is already taken",
                                      "give each custom metric its own name, other than error-rate and latency")
                try:
                    check_template(query)
                except TemplateError as error:
                    raise ConfigError(f"{item.path}.query", str(error),
                                      "close every quote and use only " + ", ".join(
                                          "{{" + v + "}}" for v in TEMPLATE_VARIABLES)) from None
                custom.append(CustomMetric(name, query, high, low))
    else:
        builtins = list(BUILTIN_METRICS)
    prometheus = node.opt_str("prometheus")
    if prometheus is not None and not re.match(r"https?://", prometheus):
        raise ConfigError(f"{node.path}.prometheus", f"{prometheus!r} is not an http(s) URL",
                          "write e.g. http://prometheus.monitoring:9090")
    return AnalysisSpec(
        judge=node.opt_choice("judge", JUDGES) or "sequential",
        alpha=alpha,
        metrics=tuple(builtins),
        custom=tuple(custom),
        interval_seconds=_analysis_interval(node),
        preset=node.opt_choice("preset", PRESETS),
        prometheus=prometheus,
    )


MIN_ANALYSIS_INTERVAL = 2.0


def _analysis_interval(node: _Node) -> float:
    seconds = node.opt_duration("interval") or DEFAULT_ANALYSIS_INTERVAL
    if seconds < MIN_ANALYSIS_INTERVAL or seconds != round(seconds):
        raise ConfigError(f"{node.path}.interval", f"{seconds:g}s is too short or not whole seconds: each look "
                          "counts requests over one interval, which needs at least two Prometheus scrapes",
                          "use whole seconds, at least 2s and best 4x the scrape interval (e.g. 30s or 1m)")
    return seconds


_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def _parse_matchers(node: _Node) -> tuple[AlertMatcher, ...]:
    text = node.string()
    matchers: list[AlertMatcher] = []
    pos = 0
    while pos < len(text):
        found = _MATCHER.match(text, pos)
        if not found or found.end() == pos:
            raise ConfigError(node.path, f"cannot read alert matcher at {text[pos:]!r}",
                              'write Prometheus-style matchers, e.g. severity="page", alertname=~"Canary.*"')
        label, op, value = found.group(1), found.group(2), found.group(3).encode().decode("unicode_escape")
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ConfigError(node.path, f"{value!r} is not a valid regular expression",
                                  "fix the regular expression") from exc
        matchers.append(AlertMatcher(label, op, value))
        pos = found.end()
    if not matchers:
        raise ConfigError(node.path, "is empty", 'write e.g. severity="page"')
    return tuple(matchers)


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}use one of: {', '.join(choices)}"


class _Node:
    """A value in the parsed YAML with its path, so every error can say where it is."""

    def __init__(self, value: Any, path: str) -> None:
        self.value = value
        self.path = path

    def mapping(self) -> Mapping[str, Any]:
        if not isinstance(self.value, dict):
            raise ConfigError(self.path, f"expected a mapping, got {_kind(self.value)}", "write key: value pairs")
        return self.value

    def keys(self, allowed: set[str]) -> None:
        for key in self.mapping():
            if key not in allowed:
                raise ConfigError(f"{self.path}.{key}", "unknown key", _suggest(str(key), sorted(allowed)))

    def has(self, key: str) -> bool:
        return key in self.mapping()

    def child(self, key: str) -> _Node:
        mapping = self.mapping()
        if key not in mapping:
            raise ConfigError(f"{self.path}.{key}", "is required", f"add {key}")
        return _Node(mapping[key], f"{self.path}.{key}")

    def items(self, min_len: int = 0) -> list[_Node]:
        if not isinstance(self.value, list):
            raise ConfigError(self.path, f"expected a list, got {_kind(self.value)}", "write a YAML list")
        if len(self.value) < min_len:
            raise ConfigError(self.path, "must not be empty", "list at least one entry or remove the key")
        return [_Node(v, f"{self.path}[{i}]") for i, v in enumerate(self.value)]

    def string(self) -> str:
        if not isinstance(self.value, str) or not self.value:
            raise ConfigError(self.path, f"expected a non-empty string, got {_kind(self.value)}", "quote the value")
        return self.value

    def number(self) -> float:
        if isinstance(self.value, bool) or not isinstance(self.value, int | float) or not math.isfinite(self.value):
            raise ConfigError(self.path, f"expected a number, got {_kind(self.value)}", "write a plain number")
        return float(self.value)

    def weight(self) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise ConfigError(self.path, f"expected a whole percentage, got {_kind(self.value)}",
                              "write an integer from 1 to 100")
        if not 1 <= self.value <= 100:
            raise ConfigError(self.path, f"weight {self.value} is out of range", "use an integer from 1 to 100")
        return int(self.value)

    def opt_str(self, key: str) -> str | None:
        return self.child(key).string() if self.has(key) else None

    def opt_name(self, key: str) -> str | None:
        name = self.opt_str(key)
        if name is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", name):
            raise ConfigError(f"{self.path}.{key}", f"{name!r} is not a valid object name",
                              "use lower-case letters, digits, '-' and '.'")
        return name

    def opt_choice(self, key: str, choices: Sequence[str]) -> str | None:
        value = self.opt_str(key)
        if value is not None and value not in choices:
            raise ConfigError(f"{self.path}.{key}", f"unknown value {value!r}", _suggest(value, choices))
        return value

    def opt_duration(self, key: str) -> float | None:
        if not self.has(key):
            return None
        try:
            return parse_duration(self.mapping()[key])
        except ValueError as exc:
            raise ConfigError(f"{self.path}.{key}", str(exc), "write e.g. 30s, 2m or 1m30s") from exc


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: f"the string {value!r}", bool: f"{value}"}.get(
        type(value), f"{type(value).__name__} {value!r}")


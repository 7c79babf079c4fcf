"""The `weir.dev/rollout` annotation, parsed once into immutable values (DESIGN §1).

Every error names the field path (e.g. `weir.dev/rollout.stages[1].canary.weights[2]`) and the fix.
Every key is optional and has a documented default; `weir.dev/enabled: "true"` alone is a valid opt-in.

Reading the annotation cannot fail in any other way: `parse_rollout` raises `ConfigError` and
nothing else, whatever the text. Before YAML builds anything the text is limited to
`MAX_ANNOTATION_BYTES` and `MAX_NESTING` levels (checked on the parser's event stream, which
does not recurse) and may not use YAML aliases (no "billion laughs"); duplicate keys are refused.
Values echoed in errors are cut to `MAX_ECHO_CHARS` and a whole error to `MAX_ERROR_CHARS`.
"""

from __future__ import annotations

import datetime
import difflib
import math
import re
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from adapters.base import Match, Routing
from analysis.queries import TemplateError, check_template
from canary.annotations import ROLLOUT
from canary.durations import format_duration, parse_duration
from canary.regexes import SAFE_REGEX_FIX, check_regex, regex_problem

ROUTERS = ("service", "nginx", "gateway", "istio", "smi")
JUDGES = ("sequential", "mannwhitney", "threshold")
PRESETS = ("app", "nginx", "istio", "envoy")
BUILTIN_METRICS = ("error-rate", "latency")
DEFAULT_WEIGHTS = (10, 25, 50)
DEFAULT_STEP_SECONDS = 60.0
DEFAULT_ANALYSIS_INTERVAL = 30.0
DEFAULT_PROGRESS_DEADLINE = 600.0  # Kubernetes' default progressDeadlineSeconds

MAX_ANNOTATION_BYTES = 64 * 1024
MAX_NESTING = 32  # the README's examples nest 5 levels deep
MAX_ECHO_CHARS = 80
MAX_ERROR_CHARS = 1000
# Bounds on durations (seconds): a step or a progress deadline of more than a day is a typo.
MIN_STEP_SECONDS, MAX_STEP_SECONDS = 1.0, 24 * 3600.0
MIN_ANALYSIS_INTERVAL, MAX_ANALYSIS_INTERVAL = 2.0, 3600.0
MIN_PROGRESS_DEADLINE, MAX_PROGRESS_DEADLINE = 1.0, 24 * 3600.0


class ConfigError(ValueError):
    """Invalid configuration: where it is, what is wrong, and how to fix it.

    `str(error)` is "PATH: MESSAGE. Fix: FIX", at most `MAX_ERROR_CHARS` characters: the path and
    the fix are kept, the message is cut when it has to be.
    """

    def __init__(self, path: str, message: str, fix: str) -> None:
        path, fix = _clip(path, 200), _clip(fix, 400)
        message = _clip(message, MAX_ERROR_CHARS - len(f"{path}: . Fix: {fix}"))
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


ALERT_OPERATORS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True)
class AlertMatcher:
    """One Prometheus-style label matcher; regexes must pass `canary.regexes.check_regex`."""

    label: str
    op: str  # = != =~ !~
    value: str

    def __post_init__(self) -> None:
        if self.op not in ALERT_OPERATORS:
            raise ValueError(f"op: {_echo(self.op)} is not one of {', '.join(ALERT_OPERATORS)}")
        if self.op in ("=~", "!~"):
            check_regex(self.value)  # only checked patterns ever run against alert labels

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
    """Parse the `weir.dev/rollout` annotation (absent or empty means all defaults).

    Raises ConfigError, and only ConfigError: an unexpected failure while reading the user's text
    becomes one on the deepest field reached so far.
    """
    trail = _Trail()
    try:
        return _parse(annotations, trail)
    except ConfigError:
        raise
    except Exception as exc:  # the class of failure, not an instance: nothing else may escape
        raise ConfigError(trail.path, f"cannot be read ({_describe(exc)})",
                          "write it as in the README's examples") from exc


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {_clip(str(exc), 120)}"
    except Exception:  # an exception whose text cannot be made
        return type(exc).__name__


def _parse(annotations: Mapping[str, str] | None, trail: _Trail) -> RolloutSpec:
    raw = (annotations or {}).get(ROLLOUT, "")
    if raw is None:
        return RolloutSpec()
    if not isinstance(raw, str):
        raise ConfigError(ROLLOUT, f"expected text, got {_echo(raw)}", "set the annotation to a YAML string")
    if not raw.strip():
        return RolloutSpec()
    doc = _load(raw)
    if doc is None:
        return RolloutSpec()
    root = _Node(doc, ROLLOUT, trail)
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
        progress_deadline_seconds=root.opt_duration("progress-deadline", MIN_PROGRESS_DEADLINE,
                                                    MAX_PROGRESS_DEADLINE),
        rollback_on_alerts=tuple(
            _parse_matchers(node) for node in root.child("rollback-on-alerts").items()
        ) if root.has("rollback-on-alerts") else (),
    )


# --- YAML, read with limits ------------------------------------------------------------------------


def _load(raw: str) -> Any:
    """The YAML document in `raw`, after the checks that keep the parser and the walk cheap."""
    size = len(raw) if len(raw) > MAX_ANNOTATION_BYTES else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_ANNOTATION_BYTES:
        raise ConfigError(ROLLOUT, f"is {size} bytes long, more than the {MAX_ANNOTATION_BYTES // 1024} KiB allowed",
                          "keep the rollout config short: list stages and metrics, not data")
    try:
        _check_shape(raw)
        return yaml.load(raw, Loader=_RolloutLoader)
    except ConfigError:
        raise
    except yaml.YAMLError as exc:
        raise ConfigError(ROLLOUT, f"is not valid YAML ({_clip(str(exc), 300)})",
                          "write a YAML mapping as in the README") from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(ROLLOUT, f"holds a value YAML cannot read ({_clip(str(exc), 120)})",
                          "shorten the value or quote it") from exc


# The events come from libyaml when it is installed: the same grammar, no recursion either, and
# no quadratic look-ahead on a long run of '[' (the pure-Python scanner takes ~0.2 s on one).
_EVENT_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NESTING_FIX = "flatten it: the README's examples nest 5 levels at most"


def _check_shape(raw: str) -> None:
    """Refuse deep nesting and aliases from the parser's events, before anything is built."""
    try:
        _check_events(yaml.parse(raw, Loader=_EVENT_LOADER))
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's own limit, met while looking ahead
            raise ConfigError(ROLLOUT, f"nests lists and mappings more than {MAX_NESTING} levels deep",
                              _NESTING_FIX) from None
        raise


def _check_events(events: Iterator[yaml.Event]) -> None:
    depth = 0
    for event in events:
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(ROLLOUT, f"uses the YAML alias *{_clip(str(event.anchor), 40)}{_line(event)}",
                              "write the value out in full: anchors and aliases are not accepted")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise ConfigError(ROLLOUT, f"nests lists and mappings more than {MAX_NESTING} levels deep"
                                  f"{_line(event)}", _NESTING_FIX)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _line(event: yaml.Event) -> str:
    mark = event.start_mark
    return f" (line {mark.line + 1})" if mark is not None else ""


class _RolloutLoader(yaml.SafeLoader):
    """safe_load, plus: a key may appear only once in a mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a list or mapping as a key: the constructor refuses it as unhashable
            key = self.construct_object(key_node)
            if isinstance(key, Hashable) and key in seen:
                raise ConfigError(ROLLOUT, f"the key {_echo(key)} appears twice in one mapping "
                                  f"(line {key_node.start_mark.line + 1})", "keep one of them")
            seen.add(key)
        return super().construct_mapping(node, deep)


# --- stages --------------------------------------------------------------------------------------------


def _parse_stage(node: _Node) -> Stage:
    mapping = node.mapping()
    kinds = ("ab", "gray", "canary", "blue-green")
    if len(mapping) != 1:
        raise ConfigError(node.path, "a stage is a mapping with exactly one key",
                          f"write one of {', '.join(kinds)}, e.g. '- canary: {{weights: [10, 50], interval: 1m}}'")
    kind = next(iter(mapping))
    if not isinstance(kind, str) or kind not in kinds:
        where = f"{node.path}.{_clip(kind, 60)}" if isinstance(kind, str) else node.path
        raise ConfigError(where, f"unknown stage type {_echo(kind)}", _suggest(kind, kinds))
    body = node.child(kind)
    if kind == "canary":
        body.keys({"weights", "step-weight", "max-weight", "interval"})
        interval = body.opt_duration("interval", MIN_STEP_SECONDS, MAX_STEP_SECONDS) or DEFAULT_STEP_SECONDS
        return _weight_stage(_weights(body), interval, body.path)
    if kind == "blue-green":
        body.keys({"duration"})
        hold = body.opt_duration("duration", MIN_STEP_SECONDS, MAX_STEP_SECONDS) or DEFAULT_STEP_SECONDS
        return Stage(kind, (Step(Routing(100), hold, "blue-green"),), body.path)
    body.keys({"header", "cookie", "value", "pattern", "duration"})
    match = _parse_match(body)
    hold = body.opt_duration("duration", MIN_STEP_SECONDS, MAX_STEP_SECONDS) or DEFAULT_STEP_SECONDS
    what = f"header {match.header}" if match.header else f"cookie {match.cookie}"
    detail = f"={match.value}" if match.value else (f"~{match.pattern}" if match.pattern else "")
    return Stage(kind, (Step(Routing(0, (match,)), hold, _clip(f"{kind} {what}{detail}", 120)),), body.path)


def _weights(body: _Node) -> tuple[int, ...]:
    """The ladder of a canary stage: `weights`, or `step-weight` with `max-weight` (10..50 by 10 if none)."""
    if body.has("weights"):
        if body.has("step-weight") or body.has("max-weight"):
            raise ConfigError(body.path, "weights and step-weight/max-weight are alternatives",
                              "give either weights: [...] or step-weight and max-weight")
        weights = tuple(w.weight() for w in body.child("weights").items(min_len=1))
        for i in range(1, len(weights)):
            if weights[i] <= weights[i - 1]:
                raise ConfigError(f"{body.path}.weights[{i}]", "weights must increase",
                                  f"list them in increasing order, e.g. {sorted(set(weights))}")
        return weights
    if not body.has("step-weight") and not body.has("max-weight"):
        return tuple(range(10, 51, 10))
    if not body.has("step-weight"):
        raise ConfigError(f"{body.path}.step-weight", "max-weight is given without step-weight",
                          "give step-weight too, e.g. step-weight: 10 with max-weight: 50")
    if not body.has("max-weight"):
        raise ConfigError(f"{body.path}.max-weight", "step-weight is given without max-weight",
                          "give max-weight too, e.g. max-weight: 50 with step-weight: 10")
    step, top = body.child("step-weight").weight(), body.child("max-weight").weight()
    if top < step:
        raise ConfigError(f"{body.path}.max-weight", f"{top} is below step-weight {step}",
                          "make max-weight at least step-weight")
    if top % step:
        below = top - top % step
        nearest = [w for w in (below, below + step) if w <= 100]
        nearest.sort(key=lambda w: abs(w - top))
        raise ConfigError(f"{body.path}.max-weight", f"{top} is not a multiple of step-weight {step}: the ladder "
                          f"{', '.join(map(str, range(step, top + 1, step)))} never reaches it",
                          f"use max-weight: {' or '.join(map(str, nearest))}, or list weights: [...] instead")
    return tuple(range(step, top + 1, step))


def _weight_stage(weights: Sequence[int], hold: float, path: str) -> Stage:
    steps = tuple(Step(Routing(w), hold, f"canary {w}%") for w in weights)
    return Stage("canary", steps, path)


_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}")  # an HTTP header or cookie name
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NOT_IN_COOKIES = re.compile(r'[\s",;\\]')


def _parse_match(body: _Node) -> Match:
    header, cookie = body.opt_str("header"), body.opt_str("cookie")
    if (header is None) == (cookie is None):
        raise ConfigError(body.path, "needs exactly one of header or cookie",
                          "write e.g. {header: x-canary, value: always} or {cookie: beta}")
    for name, where in ((header, "header"), (cookie, "cookie")):
        if name is not None and not _TOKEN.fullmatch(name):
            raise ConfigError(f"{body.path}.{where}", f"{_echo(name)} is not a valid {where} name",
                              "use at most 256 letters, digits and dashes")
    value, pattern = body.opt_str("value"), body.opt_str("pattern")
    if value is not None and pattern is not None:
        raise ConfigError(body.path, "value and pattern are alternatives", "keep one of them")
    if header is not None and value is None and pattern is None:
        raise ConfigError(body.path, "a header match needs value or pattern",
                          "add value: <exact value> or pattern: <regex>")
    if value is not None and (_CONTROL.search(value) or (cookie is not None and _NOT_IN_COOKIES.search(value))):
        raise ConfigError(f"{body.path}.value", f"{_echo(value)} holds characters a {'cookie' if cookie else 'header'}"
                          " value cannot carry", "use printable characters"
                          + (" without spaces, quotes, commas, semicolons or backslashes" if cookie else ""))
    if pattern is not None:
        if cookie is not None:
            raise ConfigError(f"{body.path}.pattern", "cookie matches take a value, not a pattern",
                              "use value, or match the header instead")
        problem = regex_problem(pattern)
        if problem is not None:
            raise ConfigError(f"{body.path}.pattern", f"the regular expression {_echo(pattern)} {problem}",
                              SAFE_REGEX_FIX)
    return Match(header=header, cookie=cookie, value=value, pattern=pattern)


# --- analysis ------------------------------------------------------------------------------------------


def _parse_analysis(node: _Node) -> AnalysisSpec:
    node.keys({"judge", "alpha", "metrics", "interval", "preset", "prometheus"})
    alpha = 0.01
    if node.has("alpha"):
        alpha = node.child("alpha").number()
        if not 0 < alpha < 0.5:
            raise ConfigError(f"{node.path}.alpha", f"{alpha:g} is out of range",
                              "use a false-rollback budget between 0 and 0.5, e.g. 0.01")
    builtins: list[str] = []
    custom: list[CustomMetric] = []
    if node.has("metrics"):
        for item in node.child("metrics").items(min_len=1):
            if isinstance(item.value, str):
                if item.value not in BUILTIN_METRICS:
                    raise ConfigError(item.path, f"unknown metric {_echo(item.value)}",
                                      _suggest(item.value, BUILTIN_METRICS) + ", or give {name, query, max|min}")
                builtins.append(item.value)
            else:
                custom.append(_parse_custom_metric(item, custom))
    else:
        builtins = list(BUILTIN_METRICS)
    prometheus = node.opt_str("prometheus")
    if prometheus is not None and not re.match(r"https?://", prometheus):
        raise ConfigError(f"{node.path}.prometheus", f"{_echo(prometheus)} is not an http(s) URL",
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


def _parse_custom_metric(item: _Node, earlier: Sequence[CustomMetric]) -> CustomMetric:
    item.keys({"name", "query", "max", "min"})
    low = item.child("min").number() if item.has("min") else None
    high = item.child("max").number() if item.has("max") else None
    if low is None and high is None:
        raise ConfigError(item.path, "a custom metric needs max or min",
                          "add max: <highest acceptable value> or min: <lowest>")
    if low is not None and high is not None and low > high:
        raise ConfigError(f"{item.path}.min", f"min {low:g} is above max {high:g}: no value could pass",
                          "make min at most max, or keep only one of them")
    name, query = item.child("name").string(), item.child("query").string()
    if name in BUILTIN_METRICS or any(m.name == name for m in earlier):
        raise ConfigError(f"{item.path}.name", f"the metric name {_echo(name)} is already taken",
                          "give each custom metric its own name, other than error-rate and latency")
    try:
        check_template(query)
    except TemplateError as error:
        raise ConfigError(f"{item.path}.query", str(error), error.fix) from None
    return CustomMetric(name, query, high, low)


def _analysis_interval(node: _Node) -> float:
    fix = ("use whole seconds, at least 2s and best 4x the scrape interval (e.g. 30s or 1m), "
           f"at most {format_duration(MAX_ANALYSIS_INTERVAL)}")
    seconds = node.opt_duration("interval", MIN_ANALYSIS_INTERVAL, MAX_ANALYSIS_INTERVAL, fix)
    if seconds is None:
        return DEFAULT_ANALYSIS_INTERVAL
    if seconds != round(seconds):
        raise ConfigError(f"{node.path}.interval", f"{seconds:g}s is not whole seconds: each look counts requests "
                          "over one interval, which needs at least two Prometheus scrapes", fix)
    return seconds


# --- alert matchers -------------------------------------------------------------------------------------

_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)', re.S)
_MATCHER_FIX = 'write Prometheus-style matchers, e.g. severity="page", alertname=~"Canary.*"'
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


def _parse_matchers(node: _Node) -> tuple[AlertMatcher, ...]:
    text = node.string()
    matchers: list[AlertMatcher] = []
    pos = 0
    while pos < len(text):
        found = _MATCHER.match(text, pos)
        if not found or found.end() == pos:
            raise ConfigError(node.path, f"cannot read alert matcher at {_echo(text[pos:])}", _MATCHER_FIX)
        label, op, value = found.group(1), found.group(2), _unescape(found.group(3))
        if op in ("=~", "!~"):
            problem = regex_problem(value)
            if problem is not None:
                raise ConfigError(node.path, f"the regular expression for {_echo(label)} {problem}", SAFE_REGEX_FIX)
        matchers.append(AlertMatcher(label, op, value))
        pos = found.end()
    if not matchers:
        raise ConfigError(node.path, "is empty", 'write e.g. severity="page"')
    return tuple(matchers)


def _unescape(body: str) -> str:
    """The value of a "..." matcher string: \\\\ \\" \\n \\t \\r are escapes; any other backslash
    stays as written, so `"Canary\\..*"` keeps its regex escape."""
    return re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(0)), body, flags=re.S)


# --- the walk over the YAML -----------------------------------------------------------------------------


def _suggest(word: object, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word[:64], choices, n=1) if isinstance(word, str) else []
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}use one of: {', '.join(choices)}"


class _Trail:
    """The deepest field reached so far, for errors nobody foresaw."""

    def __init__(self) -> None:
        self.path = ROLLOUT


class _Node:
    """A value in the parsed YAML with its path, so every error can say where it is."""

    def __init__(self, value: Any, path: str, trail: _Trail) -> None:
        self.value = value
        self.path = path
        self.trail = trail
        trail.path = path

    def mapping(self) -> Mapping[Any, Any]:
        if not isinstance(self.value, dict):
            raise ConfigError(self.path, f"expected a mapping, got {_echo(self.value)}", "write key: value pairs")
        return self.value

    def keys(self, allowed: set[str]) -> None:
        for key in self.mapping():
            if not isinstance(key, str):
                hint = " (YAML reads yes, no, on, off, true and false as booleans)" if isinstance(key, bool) else ""
                raise ConfigError(self.path, f"has the key {_echo(key)}, which is not text{hint}",
                                  f"quote the key; keys here are: {', '.join(sorted(allowed))}")
            if key not in allowed:
                raise ConfigError(f"{self.path}.{_clip(key, 60)}", "unknown key", _suggest(key, sorted(allowed)))

    def has(self, key: str) -> bool:
        return key in self.mapping()

    def child(self, key: str) -> _Node:
        mapping = self.mapping()
        name = _clip(key, 60)
        if key not in mapping:
            raise ConfigError(f"{self.path}.{name}", "is required", f"add {name}")
        return _Node(mapping[key], f"{self.path}.{name}", self.trail)

    def items(self, min_len: int = 0) -> list[_Node]:
        if not isinstance(self.value, list):
            raise ConfigError(self.path, f"expected a list, got {_echo(self.value)}", "write a YAML list")
        if len(self.value) < min_len:
            raise ConfigError(self.path, "must not be empty", "list at least one entry or remove the key")
        return [_Node(v, f"{self.path}[{i}]", self.trail) for i, v in enumerate(self.value)]

    def string(self) -> str:
        if not isinstance(self.value, str) or not self.value:
            raise ConfigError(self.path, f"expected a non-empty string, got {_echo(self.value)}", "quote the value")
        return self.value

    def number(self) -> float:
        value = self.value
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**300:
            value = float(value)
        if not isinstance(value, float) or not math.isfinite(value):
            raise ConfigError(self.path, f"expected a finite number, got {_echo(self.value)}", "write a plain number")
        return value

    def weight(self) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise ConfigError(self.path, f"expected a whole percentage, got {_echo(self.value)}",
                              "write an integer from 1 to 100")
        if not 1 <= self.value <= 100:
            raise ConfigError(self.path, f"weight {_echo(self.value)} is out of range", "use an integer from 1 to 100")
        return int(self.value)

    def opt_str(self, key: str) -> str | None:
        return self.child(key).string() if self.has(key) else None

    def opt_name(self, key: str) -> str | None:
        name = self.opt_str(key)
        if name is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", name):
            raise ConfigError(f"{self.path}.{key}", f"{_echo(name)} is not a valid object name",
                              "use lower-case letters, digits, '-' and '.'")
        return name

    def opt_choice(self, key: str, choices: Sequence[str]) -> str | None:
        value = self.opt_str(key)
        if value is not None and value not in choices:
            raise ConfigError(f"{self.path}.{key}", f"unknown value {_echo(value)}", _suggest(value, choices))
        return value

    def opt_duration(self, key: str, at_least: float, at_most: float, fix: str = "") -> float | None:
        if not self.has(key):
            return None
        node = self.child(key)
        try:
            return parse_duration(node.value, at_least=at_least, at_most=at_most)
        except ValueError as exc:
            raise ConfigError(node.path, f"{exc} (got {_echo(node.value)})", fix or (
                f"write a duration from {format_duration(at_least)} to {format_duration(at_most)}, "
                "e.g. 30s, 2m or 1m30s")) from None


# --- bounded echoes of user values ----------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with a mark saying how long it was."""
    if len(text) <= limit:
        return text
    tail = f"… ({len(text)} characters)"
    return text[:max(0, limit - len(tail))] + tail


def _echo(value: object) -> str:
    """A short description of a user value for an error message: never more than ~100 characters."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        if len(value) <= MAX_ECHO_CHARS:
            return repr(value)
        return f"{value[:MAX_ECHO_CHARS]!r}… ({len(value)} characters)"
    if isinstance(value, int):
        if abs(value) < 10**30:
            return f"the number {value}"
        return f"a number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, datetime.date):  # YAML reads 2024-01-01 as a date
        return f"the date {value.isoformat()} (quote it to make it text)"
    if isinstance(value, bytes):
        return f"binary data ({len(value)} bytes)"
    names: dict[type, str] = {dict: "a mapping", list: "a list", set: "a set"}
    return names.get(type(value), f"a value of type {type(value).__name__}")

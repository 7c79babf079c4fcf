"""PromQL for the analysis: which releases to measure, the built-in metric presets, and safe templating.

No user string ever reaches PromQL unescaped. Names that must be Kubernetes names are checked
(DNS-1123) when a `ReleaseWindow` is made; on top of that every value spliced into a query is
escaped for the exact place it lands in (inside "...", '...' or `...`, inside a regex matcher,
or bare), so a hostile value can only ever be a literal that matches nothing.

Presets (`PRESETS`) read one counter of requests by status code and one latency histogram, with
one query per kind for every release at once (`sum by (...)` over a namespace regex); the result
is split per release and arm client-side (`Preset.arm_of`):

- `app`: the app's own `http_requests_total{code}` and `http_request_duration_seconds_bucket{le}`.
  Series are grouped by `namespace` and `deployment` labels on the scraped series (the sandbox's
  Prometheus sets them; a kubernetes_sd `role: pod` job gets them by relabelling
  `__meta_kubernetes_namespace` to `namespace`, `__meta_kubernetes_pod_name` to `pod`, and
  `__meta_kubernetes_pod_controller_name` with regex `(.+)-[a-z0-9]+` to `deployment`, since a
  Deployment's pods belong to its ReplicaSet `<deployment>-<hash>`). Without a `deployment` label
  the Deployment comes from the `pod` label, a name of the form `<deployment>-<hash>-<suffix>`.
  Arms: Deployment `<name>-primary` is the baseline, `<name>` the canary.
- `nginx`: ingress-nginx `nginx_ingress_controller_requests{status}` and
  `nginx_ingress_controller_request_duration_seconds_bucket`, for the user's Ingress (`ingress`
  label). ingress-nginx sets the `canary` label to the alternative upstream that served the
  request: empty for the main backend (baseline), set when the canary Ingress took it.
- `istio`: `istio_requests_total{response_code}` and `istio_request_duration_milliseconds_bucket`
  (milliseconds, converted to seconds) as reported by the server side (`reporter="destination"`),
  grouped by `destination_workload_namespace` / `destination_workload` (the Deployment).
- `envoy` (Gateway API / any Envoy): cluster stats `envoy_cluster_upstream_rq{envoy_response_code}`
  and `envoy_cluster_upstream_rq_time_bucket` (milliseconds). Clusters are named
  `<namespace>_<service>_<port>` (the Contour convention; the sandbox's Envoy follows it):
  Service `<name>-primary` (or the apex `<name>`) is the baseline, `<name>-canary` the canary.

An error is a 5xx response in every preset.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from analysis.promql_syntax import syntax_error

# --- names -------------------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def check_dns_label(value: str, field: str) -> str:
    """A namespace-style name: lowercase letters, digits and '-', at most 63 characters."""
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{field}: {value!r} is not a valid DNS-1123 label; use at most 63 lowercase letters, "
            "digits or '-', starting and ending with a letter or digit"
        )
    return value


def check_dns_subdomain(value: str, field: str) -> str:
    """A Deployment/Service/Ingress-style name: DNS-1123 labels joined by '.', at most 253 characters."""
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            f"{field}: {value!r} is not a valid DNS-1123 name; use lowercase letters, digits, '-' "
            "and '.', starting and ending with a letter or digit (at most 253 characters)"
        )
    return value


@dataclass(frozen=True)
class ReleaseWindow:
    """One release to measure: where it runs, its two Deployments and when the canary started.

    `ingress` is the user's Ingress for the `nginx` preset (defaults to `name`).
    `started_at` is in unix seconds; intervals are reported relative to it.
    """

    namespace: str
    name: str
    primary: str
    canary: str
    started_at: float
    ingress: str = ""

    def __post_init__(self) -> None:
        check_dns_label(self.namespace, "namespace")
        for field in ("name", "primary", "canary"):
            check_dns_subdomain(getattr(self, field), field)
        if self.ingress:
            check_dns_subdomain(self.ingress, "ingress")
        if not math.isfinite(self.started_at):
            raise ValueError(f"started_at: {self.started_at!r} is not a time; pass unix seconds")

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def ingress_name(self) -> str:
        return self.ingress or self.name


# --- escaping ----------------------------------------------------------------------------------

_SIMPLE_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b",
                   "\f": "\\f", "\v": "\\v"}
# RE2 metacharacters; escaping any punctuation is allowed in RE2, escaping these is sufficient.
_REGEX_META = set("\\.+*?()|[]{}^$")


def escape_string_body(value: str, quote: str = '"') -> str:
    """The inside of a PromQL string literal delimited by `quote` (" or ') that reads back as `value`.

    Control and non-ASCII characters become \\u escapes, so nothing in the value can end the
    string, start a new line or be misread by the PromQL lexer.
    """
    out: list[str] = []
    for char in value:
        code = ord(char)
        if char in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[char])
        elif char == quote:
            out.append("\\" + char)
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"value {value!r} holds a lone surrogate, which no query can contain")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code > 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def promql_string(value: str) -> str:
    """A complete double-quoted PromQL string literal for `value`."""
    return '"' + escape_string_body(value) + '"'


def regex_literal(value: str) -> str:
    """An RE2 pattern that matches exactly `value` (Prometheus anchors matchers at both ends)."""
    return "".join("\\" + c if c in _REGEX_META else c for c in value)


def promql_any_of(values: Sequence[str]) -> str:
    """A quoted regex for `=~` that matches exactly one of `values` and nothing else."""
    if not values:
        raise ValueError("promql_any_of needs at least one value")
    return promql_string("|".join(regex_literal(v) for v in sorted(set(values))))


def promql_duration(seconds: float) -> str:
    """A PromQL duration (`10s`, `1500ms`) for a positive number of seconds."""
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"interval: {seconds!r} s is not a positive duration")
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


# --- templates ---------------------------------------------------------------------------------

TEMPLATE_VARIABLES = ("namespace", "name", "primary", "canary", "arm", "interval")
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
_DURATION = re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+")


TEMPLATE_FIX = "close every quote and use only " + ", ".join("{{" + v + "}}" for v in TEMPLATE_VARIABLES)
SYNTAX_FIX = ("pair every ( { [ with its closing bracket, close every quote, write a backslash in a string as "
              "\\\\, and leave # comments out (name the metric instead)")


class TemplateError(ValueError):
    """A custom PromQL template that cannot be rendered safely, or that cannot be PromQL at all.

    `fix` says what to change, in words for the person who wrote the template.
    """

    def __init__(self, message: str, fix: str = TEMPLATE_FIX) -> None:
        super().__init__(message)
        self.fix = fix


class _Context(enum.Enum):
    BARE = "bare"
    DOUBLE = '"'
    SINGLE = "'"
    RAW = "`"


def _scan_contexts(template: str) -> list[tuple[int, int, _Context, bool]]:
    """Find every {{variable}} with the lexical context it sits in and whether that string is a
    regex matcher (preceded by =~ or !~). Comments (# to end of line) are skipped."""
    found: list[tuple[int, int, _Context, bool]] = []
    context, regex, i = _Context.BARE, False, 0
    while i < len(template):
        match = _VARIABLE.match(template, i)
        if match:
            found.append((match.start(), match.end(), context, regex))
            i = match.end()
            continue
        char = template[i]
        if context is _Context.BARE:
            if char == "#":
                newline = template.find("\n", i)
                i = len(template) if newline < 0 else newline
                continue
            if char in "\"'`":
                context = _Context(char)
                regex = template[:i].rstrip().endswith(("=~", "!~"))
        elif context is not _Context.RAW and char == "\\":
            i += 2
            continue
        elif char == context.value:
            context, regex = _Context.BARE, False
        i += 1
    if context is not _Context.BARE:
        raise TemplateError(f"template: unterminated {context.value} string in {template!r}")
    return found


def _render_value(variable: str, value: str, context: _Context, regex: bool) -> str:
    if variable == "interval" and context is _Context.BARE:
        if not _DURATION.fullmatch(value):
            raise TemplateError(f"interval: {value!r} is not a PromQL duration such as 10s or 1m")
        return value
    if context is _Context.BARE:
        # A bare name becomes a whole string literal: it can never be read as PromQL syntax.
        return promql_string(value)
    literal = regex_literal(value) if regex else value
    if context is _Context.RAW:
        if "`" in literal:
            raise TemplateError(f"{variable}: {value!r} holds a backtick, which a `raw string` cannot hold")
        return literal
    return escape_string_body(literal, context.value)


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill `{{variable}}` placeholders in one pass, each escaped for where it appears.

    Inside a quoted string the value is escaped for that quote (and regex-escaped after =~ / !~);
    bare, a name becomes a double-quoted literal and `interval` must be a duration.
    """
    pieces: list[str] = []
    last = 0
    for start, end, context, regex in _scan_contexts(template):
        variable = _VARIABLE.fullmatch(template[start:end])
        assert variable is not None
        name = variable.group(1)
        if name not in values:
            raise TemplateError(
                f"template: unknown variable {{{{{name}}}}}; use one of "
                + ", ".join("{{" + v + "}}" for v in TEMPLATE_VARIABLES)
            )
        pieces.append(template[last:start])
        pieces.append(_render_value(name, values[name], context, regex))
        last = end
    pieces.append(template[last:])
    return "".join(pieces)


# Values that pass every check `ReleaseWindow` makes, so a rendered template is plain PromQL.
PLACEHOLDER_VALUES: Mapping[str, str] = {
    "namespace": "weir-check", "name": "weir-check", "primary": "weir-check-primary",
    "canary": "weir-check", "arm": "weir-check", "interval": "1m",
}


def render_placeholder(template: str) -> str:
    """`template` rendered on placeholder values (`PLACEHOLDER_VALUES`), e.g. to ask a real
    Prometheus whether it parses: `promql_parse_error(url, render_placeholder(template))`.
    Raises TemplateError when it cannot be rendered (unknown variable, unterminated string)."""
    return render(template, PLACEHOLDER_VALUES)


def check_template(template: str) -> None:
    """Raise TemplateError unless `template` renders safely (quotes closed, only known variables)
    and its rendering passes the server-less PromQL check (`promql_syntax.syntax_error`)."""
    if not template.strip():
        raise TemplateError("template: the query is empty", "write a PromQL query, e.g. sum(rate(x[{{interval}}]))")
    problem = syntax_error(render_placeholder(template))
    if problem is not None:
        raise TemplateError(f"template: {problem}", SYNTAX_FIX)


def template_values(window: ReleaseWindow, arm: str, interval: str) -> dict[str, str]:
    """The variables a custom template may use; `arm` is the Deployment being measured."""
    return {"namespace": window.namespace, "name": window.name, "primary": window.primary,
            "canary": window.canary, "arm": arm, "interval": interval}


@dataclass(frozen=True)
class CustomMetrics:
    """User PromQL evaluated once per arm (`{{arm}}` is that arm's Deployment) and interval.

    Each template returns an instant vector: `requests` / `errors` a single series with that arm's
    count in the interval (e.g. `sum(increase(x{deployment="{{arm}}"}[{{interval}}]))`), and
    `buckets` (optional) one series per `le` (`sum by (le) (increase(..._bucket{...}[{{interval}}]))`),
    with bounds in `bucket_unit_seconds`.
    """

    requests: str
    errors: str
    buckets: str = ""
    bucket_unit_seconds: float = 1.0

    def __post_init__(self) -> None:
        for field in ("requests", "errors", "buckets"):
            template = getattr(self, field)
            if field != "buckets" and not template.strip():
                raise ValueError(f"{field}: a PromQL template is required")
            try:
                _scan_contexts(template)
            except TemplateError as error:
                raise ValueError(f"{field}: {error}") from None


# --- presets -----------------------------------------------------------------------------------


class Arm(enum.StrEnum):
    BASELINE = "baseline"
    CANARY = "canary"


Labels = Mapping[str, str]


@dataclass(frozen=True)
class Preset:
    """Where one kind of data plane keeps request counts and latency histograms.

    `group_by` are the labels that identify the release and arm; `arm_of` maps one result series
    to the arm of a release (or None when the series belongs to something else).
    """

    name: str
    requests_metric: str
    code_label: str
    buckets_metric: str
    bucket_unit_seconds: float
    group_by: tuple[str, ...]
    namespace_matcher: Callable[[Sequence[str]], str]
    arm_of: Callable[[ReleaseWindow, Labels], Arm | None]
    fixed_matchers: str = ""
    derive_deployment_from_pod: bool = False

    def requests_query(self, namespaces: Sequence[str], interval: str) -> str:
        return self._query(self.requests_metric, (*self.group_by, self.code_label), namespaces, interval)

    def buckets_query(self, namespaces: Sequence[str], interval: str) -> str:
        return self._query(self.buckets_metric, (*self.group_by, "le"), namespaces, interval)

    def _query(self, metric: str, by: tuple[str, ...], namespaces: Sequence[str], interval: str) -> str:
        matchers = ", ".join(m for m in (self.namespace_matcher(namespaces), self.fixed_matchers) if m)
        window = check_duration(interval)
        if not self.derive_deployment_from_pod:
            inner = f"increase({metric}{{{matchers}}}[{window}])"
        else:
            # Series without a `deployment` label get one from their pod's name; the two sides are
            # disjoint (deployment="" vs !=""), so `or` keeps every series exactly once.
            inner = (
                f'label_replace(increase({metric}{{{matchers}, deployment=""}}[{window}]), '
                f'"deployment", "$1", "pod", "(.+)-[a-z0-9]+-[a-z0-9]+") '
                f'or increase({metric}{{{matchers}, deployment!=""}}[{window}])'
            )
        return f"sum by ({', '.join(by)}) ({inner})"


def check_duration(interval: str) -> str:
    if not _DURATION.fullmatch(interval):
        raise ValueError(f"interval: {interval!r} is not a PromQL duration such as 10s or 1m")
    return interval


def _label_in(label: str) -> Callable[[Sequence[str]], str]:
    return lambda namespaces: f"{label}=~{promql_any_of(namespaces)}"


ArmOf = Callable[[ReleaseWindow, Labels], "Arm | None"]


def _by_deployment(namespace_label: str, deployment_label: str) -> ArmOf:
    def arm_of(window: ReleaseWindow, labels: Labels) -> Arm | None:
        if labels.get(namespace_label) != window.namespace:
            return None
        deployment = labels.get(deployment_label)
        if deployment == window.primary:
            return Arm.BASELINE
        if deployment == window.canary:
            return Arm.CANARY
        return None

    return arm_of


def _nginx_arm(window: ReleaseWindow, labels: Labels) -> Arm | None:
    if labels.get("namespace") != window.namespace or labels.get("ingress") != window.ingress_name:
        return None
    # ingress-nginx leaves `canary` empty (or "-") when the main backend served the request.
    return Arm.BASELINE if labels.get("canary", "") in ("", "-") else Arm.CANARY


def _envoy_cluster_matcher(namespaces: Sequence[str]) -> str:
    alternatives = "|".join(regex_literal(n) for n in sorted(set(namespaces)))
    return f"envoy_cluster_name=~{promql_string(f'(?:{alternatives})_.+')}"


def _envoy_arm(window: ReleaseWindow, labels: Labels) -> Arm | None:
    # DNS-1123 names hold no '_', so `<namespace>_<service>_<port>` splits unambiguously.
    parts = labels.get("envoy_cluster_name", "").split("_")
    if len(parts) < 2 or parts[0] != window.namespace:
        return None
    service = parts[1]
    if service == f"{window.name}-canary":
        return Arm.CANARY
    if service in (f"{window.name}-primary", window.name):
        return Arm.BASELINE
    return None


PRESETS: dict[str, Preset] = {
    "app": Preset(
        name="app",
        requests_metric="http_requests_total",
        code_label="code",
        buckets_metric="http_request_duration_seconds_bucket",
        bucket_unit_seconds=1.0,
        group_by=("namespace", "deployment"),
        namespace_matcher=_label_in("namespace"),
        arm_of=_by_deployment("namespace", "deployment"),
        derive_deployment_from_pod=True,
    ),
    "nginx": Preset(
        name="nginx",
        requests_metric="nginx_ingress_controller_requests",
        code_label="status",
        buckets_metric="nginx_ingress_controller_request_duration_seconds_bucket",
        bucket_unit_seconds=1.0,
        group_by=("namespace", "ingress", "canary"),
        namespace_matcher=_label_in("namespace"),
        arm_of=_nginx_arm,
    ),
    "istio": Preset(
        name="istio",
        requests_metric="istio_requests_total",
        code_label="response_code",
        buckets_metric="istio_request_duration_milliseconds_bucket",
        bucket_unit_seconds=0.001,
        group_by=("destination_workload_namespace", "destination_workload"),
        namespace_matcher=_label_in("destination_workload_namespace"),
        arm_of=_by_deployment("destination_workload_namespace", "destination_workload"),
        fixed_matchers='reporter="destination"',
    ),
    "envoy": Preset(
        name="envoy",
        requests_metric="envoy_cluster_upstream_rq",
        code_label="envoy_response_code",
        buckets_metric="envoy_cluster_upstream_rq_time_bucket",
        bucket_unit_seconds=0.001,
        group_by=("envoy_cluster_name",),
        namespace_matcher=_envoy_cluster_matcher,
        arm_of=_envoy_arm,
    ),
}


def preset(name: str) -> Preset:
    """The preset called `name`, or an error that lists the choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"preset: unknown {name!r}; use one of {', '.join(PRESETS)}") from None


def is_error_code(code: str) -> bool:
    """5xx, whether the label holds the code ("503") or its class ("5xx")."""
    return code.startswith("5")


# --- custom metrics, batched ---------------------------------------------------------------------

BATCH_LABEL = "weir_batch_key"


def batched_custom_query(template: str, renders: Sequence[tuple[str, Mapping[str, str]]]) -> str:
    """One query for every (key, variables) pair: each rendered copy is tagged with
    `weir_batch_key="<key>"` and the copies are joined with `or`, so the results come back apart."""
    parts = [
        f'label_replace(({render(template, values)}), "{BATCH_LABEL}", {promql_string(key)}, "", "")'
        for key, values in renders
    ]
    return " or ".join(parts)

"""Parsing `weir.dev/rollout`: defaults, every stage form, and errors that name the field and the fix."""

from __future__ import annotations

import pytest
import yaml

from adapters.base import Match, Routing
from canary.config import AlertMatcher, ConfigError, RolloutSpec, default_stages, flatten, parse_rollout


def parse(doc: object) -> RolloutSpec:
    return parse_rollout({"weir.dev/rollout": doc if isinstance(doc, str) else yaml.safe_dump(doc)})


def test_no_annotation_means_all_defaults() -> None:
    spec = parse_rollout({})
    assert spec.router is None and spec.stages is None
    assert [s.routing.canary_weight for s in flatten(spec.stages_for("nginx"))] == [10, 25, 50]
    assert flatten(default_stages("service"))[0].routing == Routing(100)
    assert spec.analysis.judge == "sequential" and spec.analysis.alpha == 0.01


def test_the_design_example_parses() -> None:
    spec = parse({
        "router": "nginx", "ingress": "web",
        "stages": [{"ab": {"header": "x-canary", "value": "always", "duration": "2m"}},
                   {"gray": {"cookie": "region", "value": "eu", "duration": "2m"}},
                   {"canary": {"weights": [5, 10, 25, 50], "interval": "1m"}}],
        "analysis": {"alpha": 0.01, "metrics": ["error-rate", "latency"]},
        "rollback-on-alerts": ['severity="page"'],
    })
    steps = flatten(spec.stages or ())
    assert steps[0].routing == Routing(0, (Match(header="x-canary", value="always"),))
    assert steps[1].routing == Routing(0, (Match(cookie="region", value="eu"),))
    assert [s.routing.canary_weight for s in steps[2:]] == [5, 10, 25, 50]
    assert all(s.hold_seconds == 60 for s in steps[2:]) and steps[0].hold_seconds == 120
    matcher = spec.rollback_on_alerts[0][0]
    assert matcher.matches({"severity": "page"}) and not matcher.matches({"severity": "ticket"})


def test_step_weight_form_and_alert_matcher_operators() -> None:
    spec = parse({"stages": [{"canary": {"step-weight": 20, "max-weight": 60}}],
                  "rollback-on-alerts": ['alertname=~"Canary.*", severity!="info"']})
    assert [s.routing.canary_weight for s in flatten(spec.stages or ())] == [20, 40, 60]
    group = spec.rollback_on_alerts[0]
    assert all(m.matches({"alertname": "CanaryErrors", "severity": "page"}) for m in group)
    assert not all(m.matches({"alertname": "CanaryErrors", "severity": "info"}) for m in group)


@pytest.mark.parametrize(("doc", "path", "fix"), [
    ({"routr": "nginx"}, "weir.dev/rollout.routr", "did you mean 'router'"),
    ({"router": "ngnix"}, "weir.dev/rollout.router", "did you mean 'nginx'"),
    ({"stages": []}, "weir.dev/rollout.stages", "at least one"),
    ({"stages": [{"canary": {"weights": [50, 10]}}]}, "weir.dev/rollout.stages[0].canary.weights[1]", "increasing"),
    ({"stages": [{"canary": {"weights": [0]}}]}, "weir.dev/rollout.stages[0].canary.weights[0]", "1 to 100"),
    ({"stages": [{"canary": {"weights": ["ten"]}}]}, "weights[0]", "integer"),
    ({"stages": [{"canary": {"interval": "soon"}}]}, "weir.dev/rollout.stages[0].canary.interval", "30s"),
    ({"stages": [{"ab": {"header": "x", "cookie": "y"}}]}, "weir.dev/rollout.stages[0].ab", "exactly one"),
    ({"stages": [{"ab": {"header": "x", "pattern": "("}}]}, "stages[0].ab.pattern", "regular expression"),
    ({"stages": [{"blue": {}}]}, "weir.dev/rollout.stages[0].blue", "blue-green"),
    ({"analysis": {"alpha": 2}}, "weir.dev/rollout.analysis.alpha", "between 0 and 0.5"),
    ({"analysis": {"metrics": ["errors"]}}, "weir.dev/rollout.analysis.metrics[0]", "error-rate"),
    ({"analysis": {"interval": "1s"}}, "weir.dev/rollout.analysis.interval", "at least 2s"),
    ({"analysis": {"metrics": [{"name": "p", "query": 'sum(x{a="{{arm}})', "max": 1}]}},
     "weir.dev/rollout.analysis.metrics[0].query", "close every quote"),
    ({"analysis": {"metrics": [{"name": "p", "query": "sum(x{a={{pod}}})", "max": 1}]}},
     "weir.dev/rollout.analysis.metrics[0].query", "{{canary}}"),
    ({"analysis": {"metrics": ["latency", {"name": "latency", "query": "vector(1)", "max": 1}]}},
     "weir.dev/rollout.analysis.metrics[1].name", "its own name"),
    ({"analysis": {"metrics": [{"name": "p", "query": "vector(1)"}]}}, "weir.dev/rollout.analysis.metrics[0]",
     "max:"),
    ({"analysis": {"prometheus": "prom:9090"}}, "weir.dev/rollout.analysis.prometheus", "http://"),
    ({"rollback-on-alerts": ["severity=page"]}, "weir.dev/rollout.rollback-on-alerts[0]", 'severity="page"'),
    ("router: [nginx", "weir.dev/rollout", "YAML"),
    (["nginx"], "weir.dev/rollout", "mapping"),
])
def test_errors_name_the_field_and_the_fix(doc: object, path: str, fix: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(doc)
    assert path in raised.value.path, raised.value
    assert fix in str(raised.value), raised.value


# --- reading the annotation can fail only as a ConfigError ----------------------------------------------

ROLLOUT = "weir.dev/rollout"
BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
DEEP_BLOCK = "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "x: 1\n"


def canary(**body: object) -> dict[str, object]:
    return {"stages": [{"canary": body}]}


def header(**body: object) -> dict[str, object]:
    return {"stages": [{"ab": {"header": "x-canary", **body}}]}


def guard_rail(**body: object) -> dict[str, object]:
    return {"analysis": {"metrics": [{"name": "p", "query": "vector(1)", "max": 1, **body}]}}


@pytest.mark.parametrize(("doc", "path", "fix"), [
    # 1. nesting, aliases, size, values YAML itself cannot build
    ("stages: " + "[" * 5000 + "]" * 5000, ROLLOUT, "flatten it"),
    ("{a: " * 3000 + "1" + "}" * 3000, ROLLOUT, "flatten it"),
    (DEEP_BLOCK, ROLLOUT, "flatten it"),
    ("router: &r nginx\ningress: *r", ROLLOUT, "anchors and aliases are not accepted"),
    (BILLION_LAUGHS, ROLLOUT, "anchors and aliases are not accepted"),
    ("router: " + "x" * (64 * 1024), ROLLOUT, "keep the rollout config short"),
    ("analysis: {alpha: " + "1" * 5000 + "}", ROLLOUT, "shorten the value"),
    # 2. guard-rail PromQL that cannot parse
    (guard_rail(query="sum(rate("), "weir.dev/rollout.analysis.metrics[0].query", "pair every ( { ["),
    (guard_rail(query="up{"), "weir.dev/rollout.analysis.metrics[0].query", "closing bracket"),
    (guard_rail(query="up # comment"), "weir.dev/rollout.analysis.metrics[0].query", "# comments out"),
    (guard_rail(query="rate(x[5m]"), "weir.dev/rollout.analysis.metrics[0].query", "closing bracket"),
    (guard_rail(query='"unterminated'), "weir.dev/rollout.analysis.metrics[0].query", "close every quote"),
    (guard_rail(query='sum(x{a=~"b\\.c"})'), "weir.dev/rollout.analysis.metrics[0].query", "backslash"),
    (guard_rail(query="   "), "weir.dev/rollout.analysis.metrics[0].query", "write a PromQL query"),
    # 3. a guard rail no value can pass
    (guard_rail(min=5, max=1), "weir.dev/rollout.analysis.metrics[0].min", "make min at most max"),
    # 4. durations: ASCII digits, finite, positive, bounded
    ({"progress-deadline": "99999999999999999999h"}, "weir.dev/rollout.progress-deadline", "1s to 24h"),
    ({"progress-deadline": "1e20"}, "weir.dev/rollout.progress-deadline", "1s to 24h"),
    ({"progress-deadline": 1e20}, "weir.dev/rollout.progress-deadline", "1s to 24h"),
    ("progress-deadline: .inf", "weir.dev/rollout.progress-deadline", "1s to 24h"),
    ("progress-deadline: .nan", "weir.dev/rollout.progress-deadline", "1s to 24h"),
    ({"progress-deadline": "inf"}, "weir.dev/rollout.progress-deadline", "1s to 24h"),
    ({"progress-deadline": "\u0663\u0660s"}, "weir.dev/rollout.progress-deadline", "1s to 24h"),  # Arabic-Indic 30s
    ({"progress-deadline": "\u0663\u0660"}, "weir.dev/rollout.progress-deadline", "1s to 24h"),
    ({"progress-deadline": -5}, "weir.dev/rollout.progress-deadline", "1s to 24h"),
    ({"progress-deadline": "0s"}, "weir.dev/rollout.progress-deadline", "1s to 24h"),
    ({"progress-deadline": 10**40}, "weir.dev/rollout.progress-deadline", "1s to 24h"),
    (canary(interval="25h"), "weir.dev/rollout.stages[0].canary.interval", "1s to 24h"),
    (canary(interval="500ms"), "weir.dev/rollout.stages[0].canary.interval", "1s to 24h"),
    ({"stages": [{"blue-green": {"duration": "2024-01-01"}}]}, "stages[0].blue-green.duration", "1s to 24h"),
    ({"analysis": {"interval": "2h"}}, "weir.dev/rollout.analysis.interval", "at most 1h"),
    ({"analysis": {"interval": "2.5s"}}, "weir.dev/rollout.analysis.interval", "whole seconds"),
    # 5. a header match says what to match
    (header(), "weir.dev/rollout.stages[0].ab", "add value: <exact value> or pattern: <regex>"),
    ({"stages": [{"gray": {"header": "x"}}]}, "weir.dev/rollout.stages[0].gray", "add value:"),
    (header(value="a\r\nx-injected: 1"), "weir.dev/rollout.stages[0].ab.value", "printable"),
    ({"stages": [{"gray": {"cookie": "c", "value": "a; b"}}]}, "stages[0].gray.value", "semicolons"),
    # 6. regexes that could take exponential time, or do not compile, or are too long
    (header(pattern="(a+)+$"), "weir.dev/rollout.stages[0].ab.pattern", "no quantifier inside a repeated group"),
    (header(pattern="(a*)*b"), "weir.dev/rollout.stages[0].ab.pattern", "RE2-style"),
    (header(pattern="(a|aa)+$"), "weir.dev/rollout.stages[0].ab.pattern", "RE2-style"),
    (header(pattern="(.*a){20}"), "weir.dev/rollout.stages[0].ab.pattern", "RE2-style"),
    (header(pattern="(\\w+\\s?)+$"), "weir.dev/rollout.stages[0].ab.pattern", "RE2-style"),
    (header(pattern=".*a.*b.*c.*d"), "weir.dev/rollout.stages[0].ab.pattern", "at most 3 of"),
    (header(pattern="(a)\\1"), "weir.dev/rollout.stages[0].ab.pattern", "back-references"),
    (header(pattern="a" * 257), "weir.dev/rollout.stages[0].ab.pattern", "at most 256 characters"),
    ({"rollback-on-alerts": ['alertname=~"(a+)+$"']}, "weir.dev/rollout.rollback-on-alerts[0]", "RE2-style"),
    ({"rollback-on-alerts": ['severity="page", team!~"(x|xy)*"']}, "rollback-on-alerts[0]", "RE2-style"),
    ({"rollback-on-alerts": ['alertname=~"["']}, "weir.dev/rollout.rollback-on-alerts[0]", "RE2-style"),
    # 7. the step-weight ladder must be complete and reach its top
    (canary(**{"max-weight": 50}), "weir.dev/rollout.stages[0].canary.step-weight", "give step-weight too"),
    (canary(**{"step-weight": 10}), "weir.dev/rollout.stages[0].canary.max-weight", "give max-weight too"),
    (canary(**{"step-weight": 15, "max-weight": 50}), "stages[0].canary.max-weight", "use max-weight: 45 or 60"),
    (canary(**{"step-weight": 30, "max-weight": 100}), "stages[0].canary.max-weight", "use max-weight: 90,"),
    # 9. any YAML type, any key
    ("router: !!set {nginx}", "weir.dev/rollout.router", "quote the value"),
    ("router: !!binary bmdpbng=", "weir.dev/rollout.router", "quote the value"),
    ("ingress: 2024-01-01", "weir.dev/rollout.ingress", "quote the value"),
    ("stages: [{canary: {weights: [" + "9" * 4000 + "]}}]", "weir.dev/rollout.stages[0].canary.weights[0]", "1 to 100"),
    ("analysis: {alpha: " + "9" * 400 + "}", "weir.dev/rollout.analysis.alpha", "plain number"),
    ("analysis: {alpha: .nan}", "weir.dev/rollout.analysis.alpha", "plain number"),
    ("{1: x}", ROLLOUT, "quote the key"),
    ("on: nginx", ROLLOUT, "quote the key"),
    ("{[a]: b}", ROLLOUT, "YAML mapping"),
    ("analysis: {2: x}", "weir.dev/rollout.analysis", "quote the key"),
    ("stages: [{7: {}}]", "weir.dev/rollout.stages[0]", "use one of: ab, gray"),
    ("router: nginx\nrouter: istio", ROLLOUT, "keep one of them"),
    ("stages: [{canary: {interval: 1m, interval: 2m}}]", ROLLOUT, "keep one of them"),
    ("a: 1\n---\nb: 2", ROLLOUT, "YAML mapping"),
    ("router: \x00", ROLLOUT, "YAML mapping"),
])
def test_malformed_values_are_refused_with_the_field_and_the_fix(doc: object, path: str, fix: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(doc)
    assert raised.value.path.endswith(path) and raised.value.path.startswith(ROLLOUT), raised.value
    assert fix in raised.value.fix, raised.value
    assert len(str(raised.value)) <= 1000


def test_an_unforeseen_failure_becomes_a_config_error_on_the_deepest_field(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_template: str) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("canary.config.check_template", broken)
    with pytest.raises(ConfigError) as raised:
        parse(guard_rail())
    assert raised.value.path == "weir.dev/rollout.analysis.metrics[0].query"
    assert "RecursionError" in raised.value.message and "README" in raised.value.fix


def test_a_value_that_is_not_text_is_refused() -> None:
    with pytest.raises(ConfigError, match="YAML string"):
        parse_rollout({"weir.dev/rollout": 42})  # type: ignore[dict-item]


HUGE = "x" * 200_000
NEAR_LIMIT = "y" * 60_000


@pytest.mark.parametrize(("doc", "path"), [
    ({"router": HUGE}, ROLLOUT),  # over 64 KiB: refused before reading
    ({"router": NEAR_LIMIT}, "weir.dev/rollout.router"),
    ({"stages": [{"canary": {"weights": [NEAR_LIMIT]}}]}, "weir.dev/rollout.stages[0].canary.weights[0]"),
    ({"stages": [{"ab": {"header": NEAR_LIMIT, "value": "a"}}]}, "weir.dev/rollout.stages[0].ab.header"),
    ({"rollback-on-alerts": [f'severity="{NEAR_LIMIT}'], "router": "nginx"}, f"{ROLLOUT}.rollback-on-alerts[0]"),
    ({"rollback-on-alerts": [f'a=~"({NEAR_LIMIT}+)+"']}, "weir.dev/rollout.rollback-on-alerts[0]"),
    ({NEAR_LIMIT: 1}, f"weir.dev/rollout.{NEAR_LIMIT[:10]}"),
    (guard_rail(query=f'sum(x{{a="{NEAR_LIMIT}"}}'), "weir.dev/rollout.analysis.metrics[0].query"),
    (guard_rail(query=f'sum(x{{a="{NEAR_LIMIT}}})'), "weir.dev/rollout.analysis.metrics[0].query"),
    ({"progress-deadline": NEAR_LIMIT}, "weir.dev/rollout.progress-deadline"),
    ("router: [" + NEAR_LIMIT, ROLLOUT),  # a YAML error
    ("router: '" + HUGE, ROLLOUT),
])
def test_long_values_give_short_errors_that_still_name_the_field(doc: object, path: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(doc)
    assert len(str(raised.value)) <= 1000, len(str(raised.value))
    assert raised.value.path.startswith(path), raised.value.path[:100]
    assert "Fix: " in str(raised.value)


def test_config_error_text_is_capped_but_keeps_path_and_fix() -> None:
    error = ConfigError("weir.dev/rollout.router", "z" * 50_000, "use nginx")
    assert len(str(error)) <= 1000
    assert str(error).startswith("weir.dev/rollout.router: zzz") and str(error).endswith(". Fix: use nginx")
    assert "50000 characters" in str(error)


def test_cookie_matches_default_to_always_and_header_patterns_that_are_safe_parse() -> None:
    spec = parse({"stages": [{"gray": {"cookie": "beta"}},
                             {"ab": {"header": "user-agent", "pattern": "^(chrome|firefox).*$"}},
                             {"ab": {"header": "x-version", "pattern": "v[0-9]+(\\.[0-9]+)*"}},
                             {"ab": {"header": "x-path", "pattern": "[a-z]+(-[a-z]+)*"}},
                             {"ab": {"header": "x-ip", "pattern": "(\\d{1,3}\\.){3}\\d{1,3}"}}]})
    steps = flatten(spec.stages or ())
    assert steps[0].routing.matches == (Match(cookie="beta"),)
    assert [s.routing.matches[0].pattern for s in steps[1:]] == [
        "^(chrome|firefox).*$", "v[0-9]+(\\.[0-9]+)*", "[a-z]+(-[a-z]+)*", "(\\d{1,3}\\.){3}\\d{1,3}"]


def test_alert_matchers_read_escapes_like_prometheus_and_keep_regex_escapes() -> None:
    spec = parse({"rollback-on-alerts": ['team="\u00e9quipe", note="say \\"hi\\"", alertname=~"Canary\\..*"',
                                         'path="C:\\x"']})
    first, second = spec.rollback_on_alerts
    assert [m.value for m in first] == ["\u00e9quipe", 'say "hi"', "Canary\\..*"]
    assert first[2].matches({"alertname": "Canary.Errors"}) and not first[2].matches({"alertname": "CanaryXErrors"})
    assert second[0].value == "C:\\x"


def test_an_alert_matcher_refuses_an_unsafe_regex_wherever_it_is_made() -> None:
    with pytest.raises(ValueError, match="exponential"):
        AlertMatcher("alertname", "=~", "(a+)+$")
    assert AlertMatcher("alertname", "=~", "Canary.*").matches({"alertname": "CanaryErrors"})


def test_durations_at_the_bounds_parse() -> None:
    spec = parse({"stages": [{"canary": {"weights": [50], "interval": "24h"}}, {"blue-green": {"duration": "1s"}}],
                  "analysis": {"interval": "1h"}, "progress-deadline": "1h30m"})
    steps = flatten(spec.stages or ())
    assert [s.hold_seconds for s in steps] == [86400, 1]
    assert spec.analysis.interval_seconds == 3600 and spec.progress_deadline_seconds == 5400

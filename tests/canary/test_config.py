"""Parsing `weir.dev/rollout`: defaults, every stage form, and errors that name the field and the fix."""

from __future__ import annotations

import pytest
import yaml

from adapters.base import Match, Routing
from canary.config import ConfigError, default_stages, flatten, parse_rollout


def parse(doc: object) -> object:
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
    steps = flatten(spec.stages)  # type: ignore[attr-defined,arg-type]
    assert steps[0].routing == Routing(0, (Match(header="x-canary", value="always"),))
    assert steps[1].routing == Routing(0, (Match(cookie="region", value="eu"),))
    assert [s.routing.canary_weight for s in steps[2:]] == [5, 10, 25, 50]
    assert all(s.hold_seconds == 60 for s in steps[2:]) and steps[0].hold_seconds == 120
    matcher = spec.rollback_on_alerts[0][0]  # type: ignore[attr-defined]
    assert matcher.matches({"severity": "page"}) and not matcher.matches({"severity": "ticket"})


def test_step_weight_form_and_alert_matcher_operators() -> None:
    spec = parse({"stages": [{"canary": {"step-weight": 20, "max-weight": 60}}],
                  "rollback-on-alerts": ['alertname=~"Canary.*", severity!="info"']})
    assert [s.routing.canary_weight for s in flatten(spec.stages)] == [20, 40, 60]  # type: ignore[attr-defined,arg-type]
    group = spec.rollback_on_alerts[0]  # type: ignore[attr-defined]
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

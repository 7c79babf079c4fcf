"""The server-less PromQL check: what it refuses, what it lets through, and where it points."""

from __future__ import annotations

import pytest

from analysis.promql_syntax import syntax_error
from analysis.queries import TemplateError, check_template, render_placeholder


@pytest.mark.parametrize(("query", "says"), [
    ("", "empty"),
    (" \n\t", "empty"),
    ("sum(rate(", "'(' that is never closed, at position 9"),
    ("up{", "'{' that is never closed"),
    ("rate(x[5m]", "'(' that is never closed, at position 5"),
    ("sum(x))", "')' with no '(' before it at position 7"),
    ("sum(x]", "closes '(' with ']'"),
    ("x{a=1)", "closes '{' with ')'"),
    ("up # comment", "# comment at position 4"),
    ("sum(up)\n# trailing note", "# comment"),
    ('"unterminated', 'unterminated " string starting at position 1'),
    ("x{a='open}", "unterminated ' string"),
    ("x{a=`open}", "unterminated ` string"),
    ('x{a="line\nbreak"}', "unterminated \" string"),
    ('x{a="b\\.c"}', "unknown escape sequence '\\.'"),
    ("x{a='\\\"'}", "unknown escape sequence"),  # \" is no escape inside '...'
    ('x{a="\\x4"}', "wrong digit"),
    ('x{a="\\ud800"}', "not a valid character"),
    ('x{a="\\777"}', "not a valid character"),
    ('x{a="\\', "not terminated"),
])
def test_lexical_errors_are_found_and_located(query: str, says: str) -> None:
    problem = syntax_error(query)
    assert problem is not None and says in problem, problem


@pytest.mark.parametrize("query", [
    "sum(rate(x[1m]))",
    'sum by (code) (increase(http_requests_total{code=~"5..", path!="/(health"}[5m]))',
    "x{a='it\\'s'}",
    'x{a="say \\"hi\\""}',
    "x{a=`raw \\ backslash ( [ {`}",
    "x{a=`spans\nlines`}",
    'x{a="\\u00e9\\x41\\101\\U0001F600\\n\\t\\\\"}',
    "max_over_time(x[10m:1m]) > bool 3",
    'x{a="#not-a-comment"}',
])
def test_valid_queries_pass(query: str) -> None:
    assert syntax_error(query) is None


def test_a_long_query_gets_a_short_message() -> None:
    problem = syntax_error("sum(" + "x + " * 50_000)
    assert problem is not None and len(problem) < 200


@pytest.mark.parametrize(("template", "says", "fix"), [
    ("sum(rate(x{deployment=\"{{arm}}\"}[{{interval}}])", "never closed", "closing bracket"),
    ("sum(x{deployment=\"{{arm}}\"}) # canary only", "# comment", "# comments out"),
    ('sum(x{a="{{arm}})', "unterminated", "close every quote"),
    ("sum(x{a={{pod}}})", "unknown variable", "{{canary}}"),
    ("  ", "empty", "PromQL query"),
])
def test_templates_are_checked_after_rendering_with_a_fix(template: str, says: str, fix: str) -> None:
    with pytest.raises(TemplateError) as raised:
        check_template(template)
    assert says in str(raised.value) and fix in raised.value.fix


def test_placeholders_render_to_plain_promql() -> None:
    rendered = render_placeholder('sum(increase(x{ns="{{namespace}}", d=~"{{arm}}|{{primary}}"}[{{interval}}])) '
                                  "and on() vector({{name}})")
    assert rendered == ('sum(increase(x{ns="weir-check", d=~"weir-check|weir-check-primary"}[1m])) '
                        'and on() vector("weir-check")')
    assert syntax_error(rendered) is None

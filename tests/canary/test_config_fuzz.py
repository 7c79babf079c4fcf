"""Fuzzing `weir.dev/rollout`: whatever the text, `parse_rollout` answers with a spec or a ConfigError
that names a field under `weir.dev/rollout`, fits in 1,000 characters and says how to fix it.

The inputs are generated from a seeded `random.Random`, so every run checks the same values:
valid configs (the README's) with one value swapped for something hostile, raw YAML text cut and
spliced, deep nesting, anchors and aliases, and values of every YAML type.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from canary.config import ConfigError, RolloutSpec, parse_rollout

ROLLOUT = "weir.dev/rollout"

DESIGN_EXAMPLE = """\
router: nginx
ingress: web
stages:
  - ab: {header: x-canary, value: always, duration: 2m}
  - gray: {cookie: region, value: eu, duration: 2m}
  - canary: {weights: [5, 10, 25, 50], interval: 1m}
analysis:
  alpha: 0.01
  metrics: [error-rate, latency]
rollback-on-alerts: ['severity="page"']
"""
GUARD_RAIL_EXAMPLE = """\
analysis:
  metrics:
    - error-rate
    - name: canary-5xx-percent
      query: |
        sum(rate(http_requests_total{namespace="{{namespace}}", deployment="{{arm}}", code=~"5.."}[1m])) * 100
          / sum(rate(http_requests_total{namespace="{{namespace}}", deployment="{{arm}}"}[1m]))
      max: 2
"""
VALID = [
    DESIGN_EXAMPLE,
    GUARD_RAIL_EXAMPLE,
    "router: service\nstages: [{blue-green: {duration: 1m}}]\n",
    "stages: [{canary: {weights: [10, 25, 50], interval: 1m}}]\n",
    "stages: [{canary: {step-weight: 20, max-weight: 60}}]\n",
    "router: gateway\nroute: web\nstages: [{ab: {header: user-agent, pattern: '^(chrome|firefox).*$'}}]\n",
    "analysis: {judge: mannwhitney, interval: 1m, preset: istio, prometheus: 'http://prom:9090'}\n",
    "progress-deadline: 10m\nrollback-on-alerts: ['alertname=~\"Canary.*\", severity!=\"info\"']\n",
    "",
    "# only a comment\n",
]

NUMBERS: list[Any] = [0, -1, 1, 100, 101, 10**20, -(10**20), 0.5, -0.0, 1e308, 1e-320, float("inf"),
                      float("-inf"), float("nan"), 2**63, True, False]
STRINGS: list[Any] = [
    "", " ", "\u200f", "\u202e", "nginx\u200f", "\x00", "\x07", "a\nb", "\r\n", "😀", "\u0663\u0660s",
    "\u0663\u0660", "٣٠", "1e20", "inf", "nan", "-5s", "0s", "99999999999999999999h", "1m30", "1h1h1h",
    "x" * 70_000, "y" * 5_000, "é" * 300, "(a+)+$", "(a|aa)+", "(.*a){20}", "[", "(?P<x>", "\\", "\\1",
    "sum(rate(", "up{", "up # comment", "rate(x[5m]", '"unterminated', "{{pod}}", "{{", "}}", "`",
    'severity="page', 'a=~"(a*)*b"', 'a="\\x"', 'a="\\N{BULLET}"', 'a="\\u12"', "a=b", ",", '=~""',
    "*alias", "&anchor", "!!python/object:os.system", "<<", "---", "...", "%YAML 1.1", "? key", "- item",
]
OTHER: list[Any] = [None, [], {}, [[[]]], {"a": {"b": {"c": {}}}}, {1: 2}, {True: "x"}, {None: None},
                    [None], ["nginx"], {"canary": 1}, {"": ""}]
YAML_TEXT_VALUES = ["!!set {a, b}", "!!binary aGVsbG8=", "2001-12-14", "2001-12-14t21:59:43.10-05:00",
                    "!!float 1e20", "!!int " + "9" * 5000, "9" * 5000, "-" + "9" * 4400, "0x" + "f" * 300,
                    ".inf", ".nan", "-.inf", "!!str", "!!null", "~", "*undefined", "&a [*a]", "!custom x",
                    "!!timestamp 2001-12-14", "{a: 1, a: 2}", "[" * 200 + "]" * 200, "0o777", "1_000",
                    "yes", "no", "on", "off", "Y", "'unterminated", '"\\x"', '"\\ud800"', "|\n  block"]
SPLICE = [*"[]{}:,-?&*!|>'\"%@`#\\\t\n ", "\u200f", "\x00", "\x85", "\ufeff", "😀", "\ud800", "{{", "  "]


def evil_value(rng: random.Random) -> Any:
    pool: list[Any] = rng.choice([NUMBERS, STRINGS, OTHER])
    value = rng.choice(pool)
    return copy.deepcopy(value)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a parsed document a value sits (keys of mappings, indexes of lists)."""
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from paths(value, (*prefix, index))


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(doc)
    holder = out
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = value
    return out


def dump(doc: Any) -> str:
    try:
        return yaml.safe_dump(doc, allow_unicode=True, width=10_000)
    except (yaml.YAMLError, ValueError, UnicodeError):
        return repr(doc)


def bases(rng: random.Random) -> Any:
    return yaml.safe_load(rng.choice([v for v in VALID if v.strip() and not v.startswith("#")]))


def swap_a_value(rng: random.Random) -> str:
    doc = bases(rng)
    path = rng.choice(list(paths(doc)))
    return dump(replaced(doc, path, evil_value(rng)))


def swap_a_key(rng: random.Random) -> str:
    doc = bases(rng)
    holders = [p for p in paths(doc) if isinstance(_at(doc, p), dict) and _at(doc, p)]
    path = rng.choice(holders)
    holder = _at(doc, path)
    key = rng.choice(list(holder))
    new_key = rng.choice([1, True, None, 1.5, "routr", key.upper(), key + "\u200f", "x" * 5000, ""])
    holder[new_key] = holder.pop(key)
    return dump(doc)


def splice_yaml_text(rng: random.Random) -> str:
    """A value written as raw YAML: tags, dates, huge numbers, aliases, flow errors."""
    doc = bases(rng)
    path = rng.choice([p for p in paths(doc) if p])
    marker = "__FUZZ__"
    text = dump(replaced(doc, path, marker))
    return text.replace(marker, rng.choice(YAML_TEXT_VALUES), 1)


def mangle_text(rng: random.Random) -> str:
    """The README's text with a few characters inserted, deleted or duplicated."""
    text = rng.choice(VALID) or DESIGN_EXAMPLE
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(text) + 1)
        move = rng.random()
        if move < 0.4:
            text = text[:at] + rng.choice(SPLICE) + text[at:]
        elif move < 0.7:
            text = text[:at] + text[at + rng.randint(1, 8):]
        elif move < 0.85:
            text = text[:at]
        else:
            text = text[:at] + text[at:at + 40] * rng.randint(2, 4) + text[at:]
    return text


def deep_nesting(rng: random.Random) -> str:
    depth = rng.choice([31, 33, 100, 1000, 5000])
    style = rng.randrange(4)
    if style == 0:
        return "stages: " + "[" * depth + "]" * depth
    if style == 1:
        return "{a: " * depth + "1" + "}" * depth
    if style == 2:
        return "".join("  " * i + f"k{i}:\n" for i in range(min(depth, 400))) + "  " * min(depth, 400) + "x: 1\n"
    return "stages:\n" + "".join("  " * i + "- \n" for i in range(min(depth, 400)))


def aliases(rng: random.Random) -> str:
    levels = rng.randint(1, 9)
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(levels)]
    if rng.random() < 0.5:
        lines.append(f"stages: *{chr(97 + levels)}")
    return "\n".join(lines) + "\n"


def hostile_fields(rng: random.Random) -> str:
    """Targeted values in the fields with the most rules: regexes, PromQL, weights, durations."""
    choice = rng.randrange(5)
    text = rng.choice(STRINGS)
    if choice == 0:
        return dump({"stages": [{"ab": {"header": "x-canary", "pattern": text}}]})
    if choice == 1:
        return dump({"rollback-on-alerts": [f'alertname=~"{text}"']})
    if choice == 2:
        return dump({"analysis": {"metrics": [{"name": "p", "query": text, "max": rng.choice(NUMBERS)}]}})
    if choice == 3:
        return dump({"stages": [{"canary": {"step-weight": rng.choice(NUMBERS), "max-weight": rng.choice(NUMBERS)}}]})
    return dump({"progress-deadline": rng.choice(NUMBERS + STRINGS)})


GENERATORS: list[Callable[[random.Random], str]] = [
    swap_a_value, swap_a_value, swap_a_key, splice_yaml_text, splice_yaml_text, mangle_text, mangle_text,
    deep_nesting, aliases, hostile_fields, hostile_fields,
]


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def fuzz_cases(count: int, seed: int = 20240607) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(GENERATORS)(rng) for _ in range(count)]


def test_no_value_crashes_the_parser_and_every_refusal_names_a_field_and_a_fix() -> None:
    cases = fuzz_cases(1500)
    refused = 0
    escaped: list[str] = []
    for text in cases:
        try:
            outcome = parse_rollout({ROLLOUT: text})
        except ConfigError as error:
            refused += 1
            message = str(error)
            assert error.path.startswith(ROLLOUT), (error.path[:200], text[:200])
            assert len(message) <= 1000, (len(message), text[:200])
            assert "Fix:" in message and error.fix.strip(), message
        except Exception as error:  # the failure this test exists to catch
            escaped.append(f"{type(error).__name__}: {str(error)[:200]} <- {text[:200]!r}")
        else:
            assert isinstance(outcome, RolloutSpec)
    assert not escaped, "\n".join(escaped[:10])
    assert refused >= 1000, f"only {refused} of {len(cases)} generated values were malformed"


@pytest.mark.parametrize("text", VALID)
def test_the_readme_configs_still_parse(text: str) -> None:
    assert isinstance(parse_rollout({ROLLOUT: text}), RolloutSpec)


def test_the_generated_values_are_the_same_on_every_run() -> None:
    assert fuzz_cases(50) == fuzz_cases(50)

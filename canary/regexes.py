"""Regular expressions from users (header `pattern`, alert matchers `=~` / `!~`) that are safe to run.

Python's `re` backtracks, so a pattern such as `(a+)+$` takes exponential time on a string of a's.
`regex_problem` reads the parsed pattern (the standard library's own parser) and refuses, before
anything runs it:

- patterns longer than `MAX_PATTERN_LENGTH` characters, and patterns that do not compile;
- a repeated group (`+`, `*`, `{n,m}` with m > 1) holding a quantifier of variable length whose
  end is not pinned down: `(a+)+`, `(a*)*b`, `(.*a){20}`, `(\\w+\\s?)+`. It is allowed when the
  inner quantifier is followed, inside the group, by something it cannot match
  (`(\\d{1,3}\\.){3}`), or when every round of the group starts with a character the inner
  quantifier cannot match (`(-[a-z]+)*`);
- alternatives under such a repeat that can start with the same character or match nothing
  (`(a|aa)+`, `(ab|a.)*`), since each character can then be taken by either branch;
- more than `MAX_UNBOUNDED` unbounded quantifiers in one pattern (`.*a.*a.*a.*a` is polynomial of
  a high degree);
- back-references, conditionals and lookarounds: they make matching super-linear and RE2
  (Prometheus, Alertmanager, Envoy) does not support them anyway.

The check is conservative: it may refuse a pattern that would in fact be fast; the fix says what
to write instead.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_PATTERN_LENGTH = 256
MAX_UNBOUNDED = 3
SAFE_REGEX_FIX = (
    f"write a plain RE2-style pattern of at most {MAX_PATTERN_LENGTH} characters: no quantifier inside a "
    "repeated group unless a separator pins it down (write (-[a-z]+)* rather than (a+)+), alternatives under a "
    f"repeat that start with different characters, at most {MAX_UNBOUNDED} of * + {{n,}}, and no "
    "back-references or lookarounds"
)

# The standard library's regex parser (what re.compile itself uses); untyped on purpose.
_parser: Any = importlib.import_module("re._parser")
_UNBOUNDED: int = int(_parser.MAXREPEAT)
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}
_GROUPS = {"SUBPATTERN", "ATOMIC_GROUP"}
_UNSUPPORTED = {
    "GROUPREF": "back-references", "GROUPREF_IGNORE": "back-references", "GROUPREF_EXISTS": "conditionals",
    "GROUPREF_LOC_IGNORE": "back-references", "GROUPREF_UNI_IGNORE": "back-references",
    "ASSERT": "lookarounds", "ASSERT_NOT": "lookarounds",
}
_CATEGORY_TESTS = {"CATEGORY_DIGIT": re.compile(r"\d"), "CATEGORY_WORD": re.compile(r"\w"),
                   "CATEGORY_SPACE": re.compile(r"\s")}
_DISJOINT_CATEGORIES = {frozenset({"CATEGORY_DIGIT", "CATEGORY_SPACE"}),
                        frozenset({"CATEGORY_WORD", "CATEGORY_SPACE"})}


class UnsafeRegex(ValueError):
    """A user regex that `regex_problem` refuses; the message says why."""


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` is refused (a phrase that does not repeat the pattern), or None when it is safe."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"is {len(pattern)} characters long; at most {MAX_PATTERN_LENGTH} are allowed"
    try:
        re.compile(pattern)
        tree = _parser.parse(pattern)
    except re.error as error:
        return f"is not a valid regular expression ({error.msg} at position {error.pos})"
    except RecursionError:
        return "nests groups too deeply"
    except (ValueError, OverflowError, TypeError) as error:  # e.g. a repeat count beyond the engine's limit
        return f"is not a valid regular expression ({type(error).__name__})"
    ignorecase = bool(tree.state.flags & re.IGNORECASE) or _has_scoped_ignorecase(tree.data)
    checker = _Checker(ignorecase)
    try:
        checker.walk(tree.data, repeated=False)
    except UnsafeRegex as refused:
        return str(refused)
    except RecursionError:
        return "nests groups too deeply"
    if checker.unbounded > MAX_UNBOUNDED:
        return (f"has {checker.unbounded} unbounded quantifiers (*, +, {{n,}}); at most {MAX_UNBOUNDED} "
                "keep matching fast")
    return None


def check_regex(pattern: str) -> str:
    """`pattern` itself when it is safe; raises UnsafeRegex saying why not."""
    problem = regex_problem(pattern)
    if problem is not None:
        raise UnsafeRegex(problem)
    return pattern


# --- character sets, coarse but never too small ------------------------------------------------


@dataclass(frozen=True)
class _Chars:
    """Characters an item can match: code-point ranges, `\\d`/`\\w`/`\\s` categories, or anything."""

    ranges: tuple[tuple[int, int], ...] = ()
    categories: frozenset[str] = frozenset()
    anything: bool = False

    def __or__(self, other: _Chars) -> _Chars:
        return _Chars(self.ranges + other.ranges, self.categories | other.categories,
                      self.anything or other.anything)

    @property
    def empty(self) -> bool:
        return not (self.ranges or self.categories or self.anything)

    def overlaps(self, other: _Chars) -> bool:
        if self.empty or other.empty:
            return False
        if self.anything or other.anything:
            return True
        if any(lo <= o_hi and o_lo <= hi for lo, hi in self.ranges for o_lo, o_hi in other.ranges):
            return True
        if any(_category_meets(c, other.ranges) for c in self.categories):
            return True
        if any(_category_meets(c, self.ranges) for c in other.categories):
            return True
        return any(a == b or frozenset({a, b}) not in _DISJOINT_CATEGORIES
                   for a in self.categories for b in other.categories)


_ANYTHING = _Chars(anything=True)


def _category_meets(category: str, ranges: Iterable[tuple[int, int]]) -> bool:
    test = _CATEGORY_TESTS.get(category)
    for lo, hi in ranges:
        if test is None or hi - lo > 512:
            return True
        if any(test.match(chr(code)) for code in range(lo, hi + 1)):
            return True
    return False


def _has_scoped_ignorecase(items: Iterable[Any]) -> bool:
    for op, av in items:
        name = str(op)
        if name == "SUBPATTERN" and av[1] & re.IGNORECASE:
            return True
        for sub in _children(name, av):
            if _has_scoped_ignorecase(sub.data):
                return True
    return False


def _children(name: str, av: Any) -> list[Any]:
    """The sub-patterns directly under one parsed item."""
    if name in _REPEATS:
        return [av[2]]
    if name == "SUBPATTERN":
        return [av[3]]
    if name == "ATOMIC_GROUP":
        return [av]
    if name == "BRANCH":
        return list(av[1])
    if name in ("ASSERT", "ASSERT_NOT"):
        return [av[1]]
    if name == "GROUPREF_EXISTS":
        return [s for s in av[1:] if s is not None]
    return []


@dataclass
class _Checker:
    ignorecase: bool
    unbounded: int = 0

    # chars --------------------------------------------------------------------------------------

    def literal(self, code: int) -> _Chars:
        if not self.ignorecase:
            return _Chars(((code, code),))
        char = chr(code)
        codes = {code} | {ord(c) for c in (char.lower(), char.upper(), char.casefold()) if len(c) == 1}
        return _Chars(tuple((c, c) for c in sorted(codes)))

    def in_set(self, members: Iterable[Any]) -> _Chars:
        chars = _Chars()
        for op, av in members:
            name = str(op)
            if name == "LITERAL":
                chars |= self.literal(av)
            elif name == "RANGE":
                lo, hi = av
                if self.ignorecase:
                    chars |= _ANYTHING if hi - lo > 512 else _Chars(tuple(
                        r for code in range(lo, hi + 1) for r in self.literal(code).ranges))
                else:
                    chars |= _Chars(((lo, hi),))
            elif name == "CATEGORY" and str(av) in _CATEGORY_TESTS:
                chars |= _Chars(categories=frozenset({str(av)}))
            else:  # NEGATE, NOT_ categories, anything unexpected
                return _ANYTHING
        return chars

    def item_chars(self, name: str, av: Any) -> _Chars:
        """Every character the item can match at any of its positions."""
        if name == "LITERAL":
            return self.literal(av)
        if name == "IN":
            return self.in_set(av)
        if name == "AT":
            return _Chars()
        children = _children(name, av)
        if name in _REPEATS | _GROUPS | {"BRANCH"}:
            chars = _Chars()
            for sub in children:
                chars |= self.all_chars(sub.data)
            return chars
        return _ANYTHING  # ANY, NOT_LITERAL, references

    def all_chars(self, items: Iterable[Any]) -> _Chars:
        chars = _Chars()
        for op, av in items:
            chars |= self.item_chars(str(op), av)
        return chars

    def first(self, items: Iterable[Any]) -> tuple[_Chars, bool]:
        """The characters a match of `items` can start with, and whether it can match nothing."""
        chars = _Chars()
        for op, av in items:
            name = str(op)
            if name == "AT":
                continue
            if name in _REPEATS:
                inner, nullable = self.first(av[2].data)
                chars |= inner
                if av[0] > 0 and not nullable:
                    return chars, False
            elif name in _GROUPS:
                inner, nullable = self.first(_children(name, av)[0].data)
                chars |= inner
                if not nullable:
                    return chars, False
            elif name == "BRANCH":
                starts = [self.first(sub.data) for sub in av[1]]
                for inner, _nullable in starts:
                    chars |= inner
                if not any(nullable for _inner, nullable in starts):
                    return chars, False
            else:
                return chars | self.item_chars(name, av), False
        return chars, True

    # the walk ---------------------------------------------------------------------------------------

    def walk(self, items: list[Any], repeated: bool) -> None:
        for op, av in items:
            name = str(op)
            if name in _UNSUPPORTED:
                raise UnsafeRegex(f"uses {_UNSUPPORTED[name]}, which RE2 does not support and which can "
                                  "make matching slow")
            if name in _REPEATS:
                _low, high, body = av
                if high == _UNBOUNDED:
                    self.unbounded += 1
                if high > 1:
                    self.check_repeat(body.data)
                self.walk(body.data, repeated or high > 1)
                continue
            if name == "BRANCH" and repeated:
                self.check_alternatives(av[1])
            for sub in _children(name, av):
                self.walk(sub.data, repeated)

    def check_alternatives(self, alternatives: list[Any]) -> None:
        starts = [self.first(sub.data) for sub in alternatives]
        if any(nullable for _chars, nullable in starts):
            raise UnsafeRegex("has an alternative that can match nothing inside a repeat (as in (a|aa)+), "
                              "which can take exponential time")
        for i, (chars, _nullable) in enumerate(starts):
            if any(chars.overlaps(other) for other, _n in starts[i + 1:]):
                raise UnsafeRegex("has alternatives that can start with the same character inside a repeat "
                                  "(as in (ab|a.)+), which can take exponential time")

    def check_repeat(self, body: list[Any]) -> None:
        """A repeated body: every variable-length quantifier in it must have its end pinned down."""
        start, start_nullable = self.first(body)
        for inner, follow in self.variable_repeats(body):
            chars = self.all_chars(inner[2].data)
            if follow is not None and not follow.overlaps(chars):
                continue  # a separator it cannot eat ends it: (\d{1,3}\.){3}
            if not start_nullable and not start.overlaps(chars):
                continue  # the next round starts with a character it cannot eat: (-[a-z]+)*
            raise UnsafeRegex("repeats a group that holds another quantifier (as in (a+)+, (a*)*b or "
                              "(.*a){20}), which can take exponential time")

    def variable_repeats(self, items: list[Any]) -> list[tuple[Any, _Chars | None]]:
        """Each repeat of variable length anywhere in `items`, with the characters that must follow
        it within its own sequence (None when what follows can match nothing)."""
        found: list[tuple[Any, _Chars | None]] = []
        for index, (op, av) in enumerate(items):
            name = str(op)
            if name in _REPEATS and av[0] != av[1]:
                follow, nullable = self.first(items[index + 1:])
                found.append((av, None if nullable else follow))
            for sub in _children(name, av):
                found.extend(self.variable_repeats(sub.data))
        return found

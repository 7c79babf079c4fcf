"""A lexer-level PromQL check that needs no server: what can be refused when the config is read.

`syntax_error(query)` finds what would make Prometheus refuse the query before it ever looks at
metric names or types:

- an empty query;
- brackets `(` `)`, `{` `}`, `[` `]` that do not pair up (outside string literals);
- string literals that never end: "..." and '...' end at their quote and may not span lines;
  `...` (raw) strings may span lines; escapes in "..." / '...' follow PromQL's rules (\\a \\b \\f
  \\n \\r \\t \\v \\\\, the string's own quote, \\ooo octal, \\xhh, \\uhhhh, \\Uhhhhhhhh), so
  `"\\."` is refused as Prometheus refuses it;
- a `#` comment. PromQL allows comments, but Weir wraps every guard-rail query in
  `label_replace((...), ...)` and joins copies with `or`: a comment would swallow the closing
  parenthesis. Write the note in the metric's `name` instead.

Everything else (function names, argument types, label names) needs the real parser: see
`analysis.prometheus.promql_parse_error`.
"""

from __future__ import annotations

_CLOSING = {"(": ")", "{": "}", "[": "]"}
_OPENING = {close: open_ for open_, close in _CLOSING.items()}
_SIMPLE_ESCAPES = set("abfnrtv\\")
_NUMERIC_ESCAPES = {"x": (2, 16, 0xFF), "u": (4, 16, 0x10FFFF), "U": (8, 16, 0x10FFFF)}
_EXCERPT = 24


def syntax_error(query: str) -> str | None:
    """What makes `query` unparseable at the lexical level, or None when nothing is found."""
    if not query.strip():
        return "the query is empty"
    open_brackets: list[int] = []  # positions of ( { [ not yet closed
    i = 0
    while i < len(query):
        char = query[i]
        if char in "\"'`":
            end = _string_end(query, i)
            if isinstance(end, str):
                return end
            i = end
            continue
        if char == "#":
            return (f"has a # comment at {_where(query, i)}; Weir wraps the query in label_replace((...)) "
                    "and a comment would hide the closing parenthesis")
        if char in _CLOSING:
            open_brackets.append(i)
        elif char in _OPENING:
            if not open_brackets:
                return f"has a '{char}' with no '{_OPENING[char]}' before it at {_where(query, i)}"
            opened = query[open_brackets.pop()]
            if _CLOSING[opened] != char:
                return f"closes '{opened}' with '{char}' at {_where(query, i)}; expected '{_CLOSING[opened]}'"
        i += 1
    if open_brackets:
        at = open_brackets[-1]
        return f"has a '{query[at]}' that is never closed, at {_where(query, at)}"
    return None


def _string_end(query: str, start: int) -> int | str:
    """The index after the string literal opening at `start`, or what is wrong with it."""
    quote = query[start]
    i = start + 1
    while i < len(query):
        char = query[i]
        if char == quote:
            return i + 1
        if quote == "`":
            i += 1
            continue
        if char == "\n":
            break
        if char == "\\":
            problem = _escape_problem(query, i + 1, quote)
            if isinstance(problem, str):
                return f"{problem} at {_where(query, i)}"
            i = problem
            continue
        i += 1
    return f"has an unterminated {quote} string starting at {_where(query, start)}"


def _escape_problem(query: str, i: int, quote: str) -> int | str:
    """The index after the escape whose letter is at `i`, or what is wrong with it."""
    if i >= len(query):
        return "has an escape sequence that is not terminated"
    letter = query[i]
    if letter in _SIMPLE_ESCAPES or letter == quote:
        return i + 1
    if letter in "01234567":
        digits, base, highest, first = 3, 8, 0xFF, i
    elif letter in _NUMERIC_ESCAPES:
        (digits, base, highest), first = _NUMERIC_ESCAPES[letter], i + 1
    else:
        return f"has an unknown escape sequence '\\{letter}' (write '\\\\{letter}' for a literal backslash)"
    text = query[first:first + digits]
    allowed = "01234567" if base == 8 else "0123456789abcdefABCDEF"
    if len(text) < digits or any(c not in allowed for c in text):
        return f"has an escape sequence '\\{query[i:first + digits]}' with a wrong digit"
    code = int(text, base)
    if code > highest or 0xD800 <= code < 0xE000:
        return f"has an escape sequence '\\{query[i:first + digits]}' that is not a valid character"
    return first + digits


def _where(query: str, index: int) -> str:
    """`position N (near '...')`, short enough for an error message."""
    lo = max(0, index - _EXCERPT // 2)
    excerpt = query[lo:lo + _EXCERPT]
    return f"position {index + 1} (near {excerpt!r})"

"""One spelling for equivalent Routings, so a routing set and the routing read back compare equal
whichever router wrote it."""

from __future__ import annotations

from dataclasses import replace

from adapters.base import Match, Routing

ALWAYS = "always"


def canonical_match(match: Match) -> Match:
    # Header names are case-insensitive (Istio stores them lower-case), and a header or cookie match
    # with no value means "set to `always`" (adapters.base.Match), so both spellings become one.
    if match.header:
        match = replace(match, header=match.header.lower())
    if match.value == ALWAYS:
        match = replace(match, value=None)
    return match


def canonical(routing: Routing) -> Routing:
    """`routing` with matches in a fixed order (headers, then cookies) and defaults left implicit."""
    matches = sorted(
        (canonical_match(match) for match in routing.matches),
        key=lambda match: (
            match.cookie is not None,
            match.header or match.cookie or "",
            match.value or "",
            match.pattern or "",
        ),
    )
    return Routing(canary_weight=routing.canary_weight, matches=tuple(matches))

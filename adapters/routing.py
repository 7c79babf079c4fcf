"""One spelling for equivalent Routings, so a weight set and the weight read back compare equal."""

from __future__ import annotations

from dataclasses import replace

from adapters.base import Match, Routing


def canonical_match(match: Match) -> Match:
    # A cookie match with no value means "the cookie is `always`" (adapters.base.Match).
    if match.cookie and match.value == "always":
        return replace(match, value=None)
    return match


def canonical(routing: Routing) -> Routing:
    """`routing` with matches in a fixed order (headers, then cookies) and defaults left implicit."""
    matches = sorted(
        (canonical_match(match) for match in routing.matches),
        key=lambda match: (match.cookie is not None, match.header or match.cookie or "", match.value or ""),
    )
    return Routing(canary_weight=routing.canary_weight, matches=tuple(matches))

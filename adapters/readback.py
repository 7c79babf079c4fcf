"""The two halves of the read-back contract every router shares: a read that reports failures as values
(`Unreadable`) instead of raising, and a `set` that only returns once the routing reads back as asked."""

from __future__ import annotations

import json
from collections.abc import Callable

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from adapters.base import Missing, Observed, RouteRead, RouterError, Routing, RoutingNotApplied, Unreadable
from adapters.routing import canonical

# What "could not look" means: the API answered with an error, or did not answer (refused, reset,
# timed out; urllib3 wraps most of those, the socket layer raises the rest as OSError).
API_ERRORS: tuple[type[BaseException], ...] = (ApiException, HTTPError, OSError)

REASON_CHARS = 300


def shortened(text: str, limit: int = REASON_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_text(error: BaseException) -> str:
    """One short line for an API failure: the status and the server's own message when there is one
    (an ApiException's str() carries every response header)."""
    if isinstance(error, ApiException):
        message = ""
        try:
            message = str(json.loads(error.body or "{}").get("message") or "")
        except (ValueError, AttributeError):
            message = str(error.body or "")
        return shortened(" ".join(part for part in (str(error.status or ""), error.reason or "", message) if part))
    return shortened(f"{type(error).__name__}: {error}")


def read_safely(look: Callable[[], RouteRead]) -> RouteRead:
    """`look()`, with API failures and unparsable values turned into `Unreadable` and an observed
    routing in canonical form."""
    try:
        seen = look()
    except API_ERRORS as error:
        return Unreadable(error_text(error))
    except ValueError as error:  # e.g. a weight annotation someone set to "half"
        return Unreadable(shortened(f"cannot parse the routing: {error}"))
    if isinstance(seen, Observed):
        return Observed(canonical(seen.routing))
    return seen


def describe(seen: RouteRead) -> str:
    if isinstance(seen, Observed):
        matches = ", ".join(
            f"{'header' if match.header else 'cookie'} {match.header or match.cookie}" for match in seen.routing.matches
        )
        return f"canary weight {seen.routing.canary_weight}" + (f" with matches on {matches}" if matches else "")
    if isinstance(seen, Missing):
        return f"{seen.what} missing"
    return f"nothing readable ({seen.reason})"


def missing_error(missing: Missing) -> RouterError:
    return RouterError(
        "route",
        f"{missing.what} is missing, so traffic cannot be changed",
        "let Weir re-run its setup (ensure re-creates it with all traffic on the primary)",
    )


def set_verified(
    router: str,
    read: Callable[[], RouteRead],
    write: Callable[[Routing], None],
    routing: Routing,
) -> None:
    """Write `routing` unless it is in place already, then read it back.

    RouterError before writing anything when an object the routing needs is missing;
    RoutingNotApplied when the read-back is anything but `Observed(canonical(routing))`."""
    wanted = Observed(canonical(routing))
    before = read()
    if isinstance(before, Missing):
        raise missing_error(before)
    if before == wanted:
        return
    write(wanted.routing)
    after = read()
    if after != wanted:
        raise RoutingNotApplied(
            "router",
            f"router {router} reads back {describe(after)} after setting {describe(wanted)}",
            "look for something else rewriting the router's objects (another controller, a GitOps sync); "
            "Weir sets the routing again on its next pass",
        )

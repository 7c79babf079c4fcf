"""The one place that reads Weir's annotations off a Deployment (DESIGN §1): opt-in, the rollout config,
the persisted state, a pending command and recorded alerts, each parsed once into a value.

Reading a user's annotation never raises: whatever is wrong with it becomes a config error that names
the field and the fix (the phase goes Invalid), or, for state Weir wrote, "no state" (observed again).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canary.alerts import Alert, decode
from canary.annotations import ALERTS, COMMAND, COMMANDS, ENABLED, ROLLOUT, STATE
from canary.config import ConfigError, RolloutSpec, parse_rollout
from canary.state import ReleaseState, read_state

MAX_ECHO_CHARS = 1000  # a config error's text is kept to this, so the state and Event stay small


@dataclass(frozen=True)
class Annotated:
    enabled: bool
    state: ReleaseState | None
    spec: RolloutSpec | None  # None when the configuration is invalid
    config_error: str | None  # field path, what is wrong, and the fix
    command: str | None  # a valid pending command
    unknown_command: str | None  # a command value Weir does not know (ignored, logged)
    alerts: tuple[Alert, ...]


def read_annotations(deployment: Mapping[str, Any]) -> Annotated:
    annotations = dict((deployment.get("metadata") or {}).get("annotations") or {})
    spec, error = read_rollout(annotations)
    command = annotations.get(COMMAND)
    unknown = None
    if command is not None:
        command = command.strip()
        if not is_command(command):
            unknown, command = command[:100], None
    return Annotated(
        enabled=str(annotations.get(ENABLED, "")).strip().lower() == "true",
        state=read_state(annotations.get(STATE)),
        spec=spec,
        config_error=error,
        command=command,
        unknown_command=unknown,
        alerts=decode(annotations.get(ALERTS)),
    )


def read_rollout(annotations: Mapping[str, str]) -> tuple[RolloutSpec | None, str | None]:
    """The parsed `weir.dev/rollout`, or the error text. Any failure of the parser is the user's value
    being unreadable, never a crash of the controller."""
    return _parsed(str(annotations.get(ROLLOUT) or ""))


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[RolloutSpec | None, str | None]:
    # Parsed once per distinct text: a reconcile reads the annotation every time, YAML is slow, and the
    # result is immutable. (Also shields the parser from being run again on a value it could not read.)
    try:
        return parse_rollout({ROLLOUT: text}), None
    except ConfigError as error:
        return None, capped(str(error))
    except Exception as error:  # the parser's own limits (e.g. RecursionError): still the value's fault
        return None, capped(f"{ROLLOUT}: could not be read ({type(error).__name__}). Fix: write a plain YAML "
                            "mapping as in the README, without deep nesting or anchors")


def is_command(text: str) -> bool:
    return text in COMMANDS or re.fullmatch(r"undo:\d{1,9}", text) is not None


def capped(text: str) -> str:
    if len(text) <= MAX_ECHO_CHARS:
        return text
    return text[: MAX_ECHO_CHARS - 30] + f"… ({len(text)} characters in all)"

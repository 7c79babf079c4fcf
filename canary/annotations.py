"""The annotation contract between Weir, its users and `kubectl weir` (DESIGN §1).

- `weir.dev/enabled: "true"` opts a Deployment in (the only required annotation).
- `weir.dev/rollout`: optional YAML config (see canary.config).
- `weir.dev/state`: JSON written only by the controller; the whole persisted release state.
- `weir.dev/alerts`: JSON written by the controller's webhook (firing alerts recorded before it answers),
  consumed with the state write that acts on them.
- `weir.dev/command`: written by people (`kubectl weir VERB` or `kubectl annotate`), consumed and
  removed by the controller in the same write that records its effect. Values:
  `promote`, `promote-full`, `abort`, `pause`, `resume`, `retry`, `undo`, `undo:<revision>`.
"""

from __future__ import annotations

PREFIX = "weir.dev/"
ENABLED = PREFIX + "enabled"
ROLLOUT = PREFIX + "rollout"
STATE = PREFIX + "state"
COMMAND = PREFIX + "command"
ALERTS = PREFIX + "alerts"  # firing alerts recorded by the webhook, consumed by the controller (JSON list)

# Labels on every object Weir creates, so it can find (and only touch) its own.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "weir"
PART_OF_LABEL = "weir.dev/release-of"  # the user's Deployment name

COMMANDS = ("promote", "promote-full", "abort", "pause", "resume", "retry", "undo")

# Keys of the `weir.dev/state` JSON that tools may read (contract for `kubectl weir status`):
#   phase     Initializing | Idle | Progressing | Paused | Promoting | RollingBack | RolledBack |
#             Invalid | Finalizing | Degraded
#   stage     index of the current stage (0-based) or null;  stage_name: e.g. "canary 25%"
#   weight    canary traffic weight in percent as last set
#   revision  the release's revision number; canary_hash / primary_hash: pod-template hashes
#   message   human explanation of the phase (for Invalid: field path and the fix)
STATE_PUBLIC_KEYS = ("phase", "stage", "stage_name", "weight", "revision", "canary_hash", "primary_hash", "message")

#!/usr/bin/env bash
# The one demo command (README): set up, then run `weir demo` on the local sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/weir demo "$@"

#!/usr/bin/env bash
# The one test command (README, .ci/run): set up, lint, type-check, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
mypy
pytest -q -p no:cacheprovider "$@"

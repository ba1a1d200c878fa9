#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: unit, property, simulation and end-to-end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
exec .venv/bin/pytest -q -p no:cacheprovider "$@"

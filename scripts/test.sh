#!/usr/bin/env bash
# The README's second command: set up, then run every test against a real PostGIS
# that the test session provisions itself (database gridmap_test).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# The README's second command: set up, then run every test against a real PostGIS
# that the test session provisions itself (database gridmap_test).
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests drive Debian's Chromium; the font makes Chinese text legible in screenshots.
GRIDMAP_EXTRA_APT="${GRIDMAP_EXTRA_APT:-} chromium fonts-wqy-microhei" ./scripts/setup.sh
.venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# The README's first command: set up, provision PostGIS, load the demo district.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/gridmap demo "$@"

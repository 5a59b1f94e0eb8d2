#!/usr/bin/env bash
# The README's first command: set up, provision PostGIS, load the demo district,
# then serve the API and the map at http://127.0.0.1:8000/map (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/gridmap demo "$@"
exec .venv/bin/gridmap serve --host 127.0.0.1 --port 8000

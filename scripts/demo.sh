#!/usr/bin/env bash
# The README's first command: set up, provision PostGIS, load the demo district,
# then serve the API and the map at http://127.0.0.1:8000/map (Ctrl-C stops it).
# Arguments go to `gridmap demo` (e.g. --defects); GRIDMAP_HOST and GRIDMAP_PORT
# choose where to serve (default 127.0.0.1:8000).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/gridmap demo "$@"
exec .venv/bin/gridmap serve --host "${GRIDMAP_HOST:-127.0.0.1}" --port "${GRIDMAP_PORT:-8000}"

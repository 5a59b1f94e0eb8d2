#!/usr/bin/env bash
# Install the pages' front-end packages (Leaflet, markercluster, leaflet-search, Swagger UI,
# ReDoc, …), pinned by package.json + package-lock.json, into var/assets/node_modules with
# `npm ci`. The app serves them itself, so /map, /docs and /redoc work on an intranet without
# internet. Nothing here is committed. Idempotent: returns at once when the lockfile has not
# changed. A running server keeps its files until the new set is complete (installed aside,
# then swapped in).
#
#   GRIDMAP_MAP_ASSET_DIR   where to install (default var/assets); the app reads the same
#                           variable
#   GRIDMAP_INSTALL_PACKAGES=false   never apt-get install nodejs/npm
set -euo pipefail
cd "$(dirname "$0")/.."

dest="${GRIDMAP_MAP_ASSET_DIR:-var/assets}"
stamp="$dest/.package-lock.sha256"
want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
if [ -d "$dest/node_modules" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  if [ "${GRIDMAP_INSTALL_PACKAGES:-true}" = "false" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "[assets] npm is missing: install Node.js and npm, then run $0 again" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "[assets] installing Debian packages: nodejs npm"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi

echo "[assets] installing the front-end packages into $dest (npm ci)"
mkdir -p "$dest"
staging="$dest/.staging"
rm -rf "$staging"
mkdir -p "$staging"
cp package.json package-lock.json "$staging/"
# --ignore-scripts: the packages are static files; no install script has to run.
(cd "$staging" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
rm -rf "$dest/node_modules.old"
if [ -d "$dest/node_modules" ]; then mv "$dest/node_modules" "$dest/node_modules.old"; fi
mv "$staging/node_modules" "$dest/node_modules"
cp package.json package-lock.json "$dest/"
rm -rf "$dest/node_modules.old" "$staging"
echo "$want" > "$stamp"

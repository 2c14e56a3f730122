#!/usr/bin/env bash
# Installs the browser assets (chart library) and, unless --production, the browser tests'
# accessibility engine from package-lock.json, exactly (npm ci), into node_modules/. Used by
# `make install` and by the platform image, so what CI tests is what ships.
set -euo pipefail
cd "$(dirname "$0")/.."
omit=()
[[ ${1:-} == --production ]] && omit=(--omit=dev)
npm ci --no-audit --no-fund --loglevel=error "${omit[@]}"

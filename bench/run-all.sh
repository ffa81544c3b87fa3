#!/usr/bin/env bash
# `make bench`: every benchmark, each printing its figures next to its
# baseline. Starts a real broker for the ones that need one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
echo "== JSON decode (bench/json-decode.sh)"
bash "$here/json-decode.sh" "$build"
echo
echo "== stateless topology on a real broker (bench/run-stateless.sh)"
KS_LOG_LEVEL=${KS_LOG_LEVEL:-3} bash "$here/run-stateless.sh" "$build" "${RECORDS:-1000000}"
echo
echo "== state: restoration and windowed count (bench/run-state.sh)"
KS_LOG_LEVEL=${KS_LOG_LEVEL:-3} bash "$here/run-state.sh" "$build"

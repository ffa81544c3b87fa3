#!/usr/bin/env bash
# `make demo-offline`: replays a generated sample of user-events through the
# example topology in the test driver. No broker, no setup.
#
#   run-offline.sh [BUILD_DIR]   (default: build; KS_DEMO_EVENTS, default 20000)
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
fi
BUILD=${1:-build}
bin="$BUILD/apps/kstreams-demo"
if [[ ! -x "$bin" ]]; then
        echo "run-offline: $bin is missing: run 'make' first" >&2
        exit 1
fi
exec "$bin" --events "${KS_DEMO_EVENTS:-20000}" --output "$BUILD/demo-dead-letters.jsonl"

#!/usr/bin/env bash
# `make demo`: replays a generated sample of user-events through the example
# topology in the test driver. No broker, no setup.
set -euo pipefail
BUILD=${1:-build}
bin="$BUILD/apps/kstreams-demo"
if [[ ! -x "$bin" ]]; then
        echo "run-demo: $bin is missing: run 'make' first" >&2
        exit 1
fi
exec "$bin" --events "${KS_DEMO_EVENTS:-20000}" --output "$BUILD/demo-dead-letters.jsonl"

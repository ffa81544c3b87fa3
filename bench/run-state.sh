#!/usr/bin/env bash
# Restoration of a 1M-key store and windowed-count throughput on a real
# broker, each next to its baseline: KS_BOOTSTRAP if set, else one started.
#   bench/run-state.sh [BUILD_DIR] [KEYS] [RECORDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
bin="$build/bench/bench_state_throughput"
[[ -x "$bin" ]] || { echo "run-state: $bin missing: run make" >&2; exit 1; }
if [[ -z "${KS_BOOTSTRAP:-}" ]]; then
        eval "$(bash "$here/../infra/kafka/kafka.sh" up bench)"
        trap 'bash "$here/../infra/kafka/kafka.sh" down bench >/dev/null 2>&1' EXIT
fi
KS_LOG_LEVEL=${KS_LOG_LEVEL:-3} "$bin" --bootstrap "$KS_BOOTSTRAP" --keys "${2:-1000000}" --records "${3:-1000000}"

#!/usr/bin/env bash
# Prints the stateless-topology throughput next to a raw librdkafka consume
# loop, on a real broker: KS_BOOTSTRAP if set, else one started here.
#   bench/run-stateless.sh [BUILD_DIR] [RECORDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
records=${2:-1000000}
bin="$build/bench/bench_stateless_throughput"
[[ -x "$bin" ]] || { echo "run-stateless: $bin missing: run make" >&2; exit 1; }
if [[ -z "${KS_BOOTSTRAP:-}" ]]; then
        eval "$(bash "$here/../infra/kafka/kafka.sh" up bench)"
        trap 'bash "$here/../infra/kafka/kafka.sh" down bench >/dev/null 2>&1' EXIT
fi
"$bin" --bootstrap "$KS_BOOTSTRAP" --records "$records"

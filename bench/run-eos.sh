#!/usr/bin/env bash
# exactly_once_v2 next to at-least-once on one broker (issue 10): the
# event-count topology's throughput over the same input, alternating the
# guarantees, then end-to-end latency at a fixed input rate (bench/eos.c
# says what each measures). Starts a broker unless KS_BOOTSTRAP is set.
#
#   bench/run-eos.sh [BUILD_DIR] [RECORDS] [RUNS]   # 500000 2 by default
#
# Environment: RATE=50000 WARMUP=10 MEASURE=20 (latency, events/s and s).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
records=${2:-500000}
runs=${3:-2}
bin="$build/bench/bench_eos"
[[ -x "$bin" ]] || { echo "run-eos.sh: $bin missing: run make" >&2; exit 1; }
export KS_LOG_LEVEL=${KS_LOG_LEVEL:-3}
if [[ -z "${KS_BOOTSTRAP:-}" ]]; then
        eval "$(bash "$here/../infra/kafka/kafka.sh" up bench)"
        trap 'bash "$here/../infra/kafka/kafka.sh" down bench >/dev/null 2>&1' EXIT
fi
log=$(mktemp "${TMPDIR:-/tmp}/ks-bench-eos.XXXXXX")
fail() { echo "run-eos.sh: bench_eos $1 failed:" >&2; tail -n 20 "$log" >&2; exit 1; }
echo "uptime before: $(uptime)"
"$bin" throughput --bootstrap "$KS_BOOTSTRAP" --records "$records" --runs "$runs" 2>"$log" || fail throughput
echo
"$bin" latency --bootstrap "$KS_BOOTSTRAP" --rate "${RATE:-50000}" \
        --warmup "${WARMUP:-10}" --measure "${MEASURE:-20}" --runs "$runs" 2>"$log" || fail latency
rm -f "$log"
echo "uptime after:  $(uptime)"

#!/usr/bin/env bash
# Calls per record on the event-count job: malloc (+calloc, realloc),
# mutex locks and clock_gettime, by the object that made them (kstreams is
# linked statically into the bench; librdkafka and the others are shared),
# counted by an LD_PRELOAD tally (bench/common/malloc_tally.c) from the
# first record processed to the last. The tally slows the run: its
# throughput is not a figure.
#
#   bench/mallocs.sh [BUILD_DIR] [RECORDS]   # RECORDS=200000; THREADS=1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
records=${2:-200000}
bin=$build/bench/bench_event_count
tally=$build/bench/bench_tally.so
[[ -x $bin && -f $tally ]] || { echo "mallocs.sh: build $bin and $tally first (make)" >&2; exit 1; }
export KS_LOG_LEVEL=${KS_LOG_LEVEL:-3}
if [[ -z "${KS_BOOTSTRAP:-}" ]]; then
        eval "$(bash "$here/../infra/kafka/kafka.sh" up bench)"
        trap 'bash "$here/../infra/kafka/kafka.sh" down bench >/dev/null 2>&1' EXIT
fi
tag="mc-$$-$(date +%s)"
"$bin" produce --bootstrap "$KS_BOOTSTRAP" --topic "$tag-in" -n "$records" 2>/dev/null
sleep 1
out=$(BENCH_MALLOC_TALLY=1 LD_PRELOAD=$tally "$bin" kstreams --bootstrap "$KS_BOOTSTRAP" \
        --topic "$tag-in" --out "$tag-out" -n "$records" --app "$tag" \
        --threads "${THREADS:-1}" 2>&1 | grep -E '^(TALLY|RESULT)')
echo "calls per input record, event count, $records records (each is processed"
echo "twice: before and after the repartition topic), ${THREADS:-1} stream thread(s)"
printf '%-8s %-40s %14s %12s\n' call object calls "per record"
echo "$out" | awk -v n="$records" -v bin="$bin" '/^TALLY/ {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        obj = f["object"]; if (obj == bin) obj = "kstreams (bench executable)"
        sub(".*/", "", obj)
        printf "%-8s %-40s %14d %12.3f\n", f["fn"], obj, f["calls"], f["calls"] / n }' | sort -k1,1 -k3,3nr

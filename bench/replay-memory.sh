#!/usr/bin/env bash
# Peak memory of `kstreams-app --replay` against the input's size: each job
# replays N seeded events (6 partitions, 1% malformed, 1% duplicates, one
# event every 10 ms) through the test driver with --replay-close-windows,
# for each N in SIZES, and the table shows the peak RSS (GNU time's
# maximum resident set size) and the run time. The driver streams the
# outputs and frees each record once processed
# (ks_test_driver_stream_outputs()), so the peak should not grow with N
# beyond the jobs' state (open windows and sessions, the dedup ids of the
# last 10 minutes, the record caches).
#
#   bench/replay-memory.sh [BUILD_DIR]     SIZES="100000 1000000" JOBS=...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
app=$build/apps/kstreams-app
producer=$build/apps/kstreams-producer
[[ -x $app && -x $producer ]] || { echo "build first: $app" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "needs GNU time (/usr/bin/time: apt-get install time)" >&2; exit 1; }
sizes=${SIZES:-100000 1000000}
jobs=${JOBS:-event-count revenue sessions}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf '%-12s %10s %14s %10s %10s\n' job events "peak RSS MiB" seconds results
for n in $sizes; do
        "$producer" --out "$tmp/in.jsonl" --count "$n" --partitions 6 \
                --seed 4242 --start-time 2026-01-01T00:00:00.000Z \
                --time-step 10 --malformed-rate 0.01 --duplicate-rate 0.01 \
                --quiet
        for job in $jobs; do
                /usr/bin/time -f '%M %e' -o "$tmp/time" "$app" --job "$job" \
                        --replay "$tmp/in.jsonl" --replay-out "$tmp/out.jsonl" \
                        --replay-close-windows 2>"$tmp/err" ||
                        { tail -5 "$tmp/err" >&2; exit 1; }
                read -r kb secs <"$tmp/time"
                results=$(grep -c "\"topic\":\"event-analytics\"" "$tmp/out.jsonl" || true)
                printf '%-12s %10s %14.1f %10s %10s\n' "$job" "$n" \
                        "$(echo "$kb / 1024" | bc -l)" "$secs" "$results"
        done
done

#!/usr/bin/env bash
# Golden replay tests of kstreams-app's jobs: events from a fixed seed
# (out-of-order, late, malformed and duplicate ones included) are written
# by kstreams-producer --out, replayed through each job in the test driver,
# and the results and dead-lettered records compared exactly with what
# tests/apps/expected.py computes on its own from the same file; then a
# hand-made case (tests/data/apps-edges) against values worked out by hand.
set -euo pipefail
KS_SOURCE_DIR=${KS_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
KS_BINARY_DIR=${KS_BINARY_DIR:-$KS_SOURCE_DIR/build}
APP=$KS_BINARY_DIR/apps/kstreams-app
PRODUCER=$KS_BINARY_DIR/apps/kstreams-producer
EXPECTED=$KS_SOURCE_DIR/tests/apps/expected.py
COMPARE=$KS_SOURCE_DIR/tests/apps/compare.py

if ! command -v python3 >/dev/null 2>&1; then
        [[ ${CI:-} == true ]] && { echo "FAIL: python3 missing (CI=true)" >&2; exit 1; }
        echo "SKIP: python3 is not installed (bash infra/deps.sh install)" >&2
        exit 77
fi
[[ -x $APP && -x $PRODUCER ]] || { echo "FAIL: build kstreams-app and kstreams-producer first" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# 8000 events of 300 users over 3 partitions, ~13 minutes of event time;
# 8% up to 40 s behind (so some later than the 10 s grace), 3% malformed or
# invalid, 3% exact copies of one of the last 1000 records.
"$PRODUCER" --out "$tmp/in.jsonl" --count 8000 --users 300 --seed 20251212 \
        --start-time 2025-12-12T10:00:00.000Z \
        --partitions 3 --late-rate 0.08 --max-lateness 40000 \
        --malformed-rate 0.03 --duplicate-rate 0.03 --quiet

# case NAME JOB "APP FLAGS" "EXPECTED FLAGS"
case_() {
        local name=$1 job=$2 app_flags=$3 exp_flags=$4
        # shellcheck disable=SC2086
        if ! "$APP" --job "$job" --replay "$tmp/in.jsonl" \
                --replay-out "$tmp/$name.out" $app_flags 2>"$tmp/$name.err"; then
                echo "FAIL: $name: kstreams-app failed:" >&2
                tail -5 "$tmp/$name.err" >&2
                failures=$((failures + 1))
                return
        fi
        # shellcheck disable=SC2086
        python3 "$EXPECTED" --job "$job" --input "$tmp/in.jsonl" $exp_flags \
                >"$tmp/$name.want"
        # shellcheck disable=SC2086
        python3 "$EXPECTED" --job "$job" --input "$tmp/in.jsonl" $exp_flags \
                --dlq >"$tmp/$name.want-dlq"
        if [[ ! -s $tmp/$name.want ]]; then
                echo "FAIL: $name: no expected results: the case tests nothing" >&2
                failures=$((failures + 1))
                return
        fi
        if python3 "$COMPARE" "$tmp/$name.out" "$tmp/$name.want" \
                "$tmp/$name.want-dlq" >"$tmp/$name.cmp" 2>&1; then
                echo "ok: $name: $(cat "$tmp/$name.cmp") ($(grep '^\[' "$tmp/$name.err" | sed 's/^\[[^]]*\] //'))"
        else
                echo "FAIL: $name:" >&2
                cat "$tmp/$name.cmp" >&2
                failures=$((failures + 1))
        fi
}

close="--replay-close-windows"
case_ event-count event-count "$close" "--close"
case_ revenue revenue "$close" "--close"
case_ sessions sessions "$close --session-gap 2m" "--close --session-gap 120000"
# Short sessions: some events are later than gap + grace and dropped.
case_ sessions-late sessions "$close --session-gap 20s" "--close --session-gap 20000"
# Without closing at the end: only windows that stream time has closed.
case_ event-count-open event-count "" ""
case_ sessions-open sessions "--session-gap 20s" "--session-gap 20000"
# A short dedup window: copies of records older than it count again.
case_ event-count-dedup30s event-count "$close --dedup-window 30s" "--close --dedup-window 30000"
case_ revenue-nodedup revenue "$close --dedup-window 0" "--close --dedup-window 0"
# Other window and grace.
case_ revenue-5m-grace0 revenue "$close --window 5m --grace 0" "--close --window 300000 --grace 0"

# The hand-made case: expected values worked out by hand
# (tests/data/apps-edges/README.md says what each event checks).
edges=$KS_SOURCE_DIR/tests/data/apps-edges
for job in event-count revenue sessions; do
        if ! "$APP" --job "$job" --replay "$edges/input.jsonl" \
                --replay-out "$tmp/edges-$job.out" --replay-close-windows \
                --window 10s --grace 2s --session-gap 5s --dedup-window 3s \
                2>"$tmp/edges-$job.err"; then
                echo "FAIL: edges $job: kstreams-app failed:" >&2
                tail -5 "$tmp/edges-$job.err" >&2
                failures=$((failures + 1))
        elif python3 "$COMPARE" "$tmp/edges-$job.out" \
                "$edges/expected-$job.jsonl" "$edges/expected-dlq.txt" \
                >"$tmp/edges-$job.cmp" 2>&1; then
                echo "ok: edges $job: $(cat "$tmp/edges-$job.cmp")"
        else
                echo "FAIL: edges $job:" >&2
                cat "$tmp/edges-$job.cmp" >&2
                failures=$((failures + 1))
        fi
done

if ((failures)); then
        echo "FAIL: test_apps_golden: $failures case(s)" >&2
        exit 1
fi
echo "PASS: test_apps_golden"

#!/usr/bin/env bash
# The apps end to end on a real broker: kstreams-producer writes seeded
# user-events (malformed and duplicate ones included) to Kafka and the same
# records to a file; kstreams-app runs event-count, revenue and sessions
# (at-least-once, one application id each); event-analytics and the
# dead-letter topic, read back with kcat, must equal what
# tests/apps/expected.py computes from the file alone. Then SIGTERM must
# close the app cleanly (exit 0).
#
# One input partition and in-order event times (no --late-rate): then the
# result does not depend on how the runtime interleaves tasks or collapses
# updates in its record cache, and windows close exactly when the model
# says (no --replay-close-windows here: only windows stream time closed).
# Event-count and revenue repartition, so with several partitions their
# stream time depends on the pace at which partitions are read; sessions do
# not, and run a second time over 6 partitions with 2 threads.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib_system.sh"

require_service KS_BOOTSTRAP
require_tool kcat
require_tool python3
APP=$KS_BINARY_DIR/apps/kstreams-app
PRODUCER=$KS_BINARY_DIR/apps/kstreams-producer
EXPECTED=$KS_SOURCE_DIR/tests/apps/expected.py
COMPARE=$KS_SOURCE_DIR/tests/apps/compare.py
[[ -x $APP && -x $PRODUCER ]] || fail "build kstreams-app and kstreams-producer first"

tmp=$(mktemp -d)
app_pid=
cleanup() {
        [[ -n $app_pid ]] && kill -KILL "$app_pid" 2>/dev/null || true
        rm -rf "$tmp"
}
trap cleanup EXIT

p=apps-pipeline-$$-$RANDOM
in=$p-user-events out=$p-analytics dlq=$p-dlq
# Event times end now-ish: the broker's time retention must not delete them.
start=$(date -u -d '-30 min' +%Y-%m-%dT%H:%M:%S.000Z)

"$PRODUCER" --bootstrap-servers "$KS_BOOTSTRAP" --topic "$in" --partitions 1 \
        --count 20000 --users 300 --seed 777 --time-step 50 \
        --start-time "$start" --malformed-rate 0.02 --duplicate-rate 0.02 \
        --out "$tmp/in.jsonl" --quiet || fail "kstreams-producer failed"

for job in event-count revenue sessions; do
        python3 "$EXPECTED" --job "$job" --input "$tmp/in.jsonl" --topic "$in" \
                --session-gap 60000
done >"$tmp/want"
python3 "$EXPECTED" --job revenue --input "$tmp/in.jsonl" --topic "$in" \
        --dlq >"$tmp/dlq1"
# Three applications each dead-letter every invalid event.
cat "$tmp/dlq1" "$tmp/dlq1" "$tmp/dlq1" >"$tmp/want-dlq"
want=$(wc -l <"$tmp/want")
((want > 100)) || fail "only $want expected results: the test would test little"

"$APP" --job event-count,revenue,sessions --bootstrap-servers "$KS_BOOTSTRAP" \
        --application-id-prefix "$p" --input-topic "$in" --output-topic "$out" \
        --dlq-topic "$dlq" --commit-interval 500 --state-dir "$tmp/state" \
        --session-gap 1m --stats-interval 2s 2>"$tmp/app.log" &
app_pid=$!

count_out() {
        kcat -b "$KS_BOOTSTRAP" -C -J -e -o beginning -t "$out" -q \
                >"$tmp/out.jsonl" 2>/dev/null || return 1
        local n
        n=$(wc -l <"$tmp/out.jsonl")
        kill -0 "$app_pid" 2>/dev/null || fail "kstreams-app exited: $(tail -5 "$tmp/app.log")"
        ((n >= want))
}
wait_for 180 count_out || fail "$(wc -l <"$tmp/out.jsonl") of $want results after 180 s: $(tail -3 "$tmp/app.log")"
# Anything beyond the expected would show up within a few commits.
sleep 3
kcat -b "$KS_BOOTSTRAP" -C -J -e -o beginning -t "$out" -q >"$tmp/out.jsonl"
kcat -b "$KS_BOOTSTRAP" -C -J -e -o beginning -t "$dlq" -q >"$tmp/dlq.jsonl"

kill -TERM "$app_pid"
rc=0
wait "$app_pid" || rc=$?
app_pid=
((rc == 0)) || fail "kstreams-app exited with $rc after SIGTERM: $(tail -5 "$tmp/app.log")"
grep -q '^\[sessions\] closed' "$tmp/app.log" || fail "no clean close in the log"

cat "$tmp/out.jsonl" "$tmp/dlq.jsonl" >"$tmp/all.jsonl"
python3 "$COMPARE" "$tmp/all.jsonl" "$tmp/want" "$tmp/want-dlq" \
        --output-topic "$out" --dlq-topic "$dlq" >"$tmp/cmp" 2>&1 ||
        fail "three jobs: $(cat "$tmp/cmp")"
echo "three jobs, one partition: $(cat "$tmp/cmp")"

# Sessions need no repartition and deduplicate per task, so their result
# does not depend on how tasks interleave: 6 partitions, 2 threads.
in=$p-events6 out=$p-sessions6 dlq=$p-dlq6
"$PRODUCER" --bootstrap-servers "$KS_BOOTSTRAP" --topic "$in" --partitions 6 \
        --count 30000 --users 500 --seed 778 --time-step 100 \
        --start-time "$(date -u -d '-2 hour' +%Y-%m-%dT%H:%M:%S.000Z)" \
        --malformed-rate 0.02 --duplicate-rate 0.02 --out "$tmp/in6.jsonl" \
        --quiet || fail "kstreams-producer failed (6 partitions)"
python3 "$EXPECTED" --job sessions --input "$tmp/in6.jsonl" --topic "$in" \
        --session-gap 300000 >"$tmp/want"
python3 "$EXPECTED" --job sessions --input "$tmp/in6.jsonl" --topic "$in" \
        --dlq >"$tmp/want-dlq"
want=$(wc -l <"$tmp/want")
((want > 100)) || fail "only $want expected sessions"
"$APP" --job sessions --threads 2 --bootstrap-servers "$KS_BOOTSTRAP" \
        --application-id-prefix "$p-6" --input-topic "$in" --output-topic "$out" \
        --dlq-topic "$dlq" --commit-interval 500 --state-dir "$tmp/state6" \
        --session-gap 5m --stats-interval 2s 2>"$tmp/app.log" &
app_pid=$!
wait_for 180 count_out || fail "$(wc -l <"$tmp/out.jsonl") of $want sessions after 180 s: $(tail -3 "$tmp/app.log")"
sleep 3
kcat -b "$KS_BOOTSTRAP" -C -J -e -o beginning -t "$out" -q >"$tmp/out.jsonl"
kcat -b "$KS_BOOTSTRAP" -C -J -e -o beginning -t "$dlq" -q >"$tmp/dlq.jsonl"
kill -TERM "$app_pid"
rc=0
wait "$app_pid" || rc=$?
app_pid=
((rc == 0)) || fail "kstreams-app (sessions) exited with $rc after SIGTERM"
cat "$tmp/out.jsonl" "$tmp/dlq.jsonl" >"$tmp/all.jsonl"
python3 "$COMPARE" "$tmp/all.jsonl" "$tmp/want" "$tmp/want-dlq" \
        --output-topic "$out" --dlq-topic "$dlq" >"$tmp/cmp6" 2>&1 ||
        fail "sessions, 6 partitions: $(cat "$tmp/cmp6")"
pass "sessions, 6 partitions, 2 threads: $(cat "$tmp/cmp6")"

#!/usr/bin/env bash
# kstreams-app --postgres on a real broker and a real PostgreSQL: the
# producer writes seeded user-events (malformed and duplicate ones
# included) to Kafka and the same records to a file; the three jobs run
# with --postgres (at-least-once, one application id each) until each has
# read and committed every record (its statistics line: in = records, lag 0,
# repartition topics included); then the tables event_counts, revenue and
# user_sessions must hold exactly what tests/apps/expected.py computes from
# the file alone, row for row, and the app must close cleanly on SIGTERM.
#
# The tables live in a schema of this test's own (search_path through
# PGOPTIONS, which libpq reads), created from infra/postgres/schema.sql and
# dropped at the end, so other tests' rows do not mix in. One input
# partition and in-order event times, as in test_apps_pipeline.sh: the
# results then do not depend on how the runtime interleaves tasks.
#
#   test_apps_postgres.sh [--help]   (under ctest: ctest -R test_apps_postgres)
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib_system.sh"

require_service KS_BOOTSTRAP
require_service KS_PG_DSN
require_tool psql
require_tool python3
APP=$KS_BINARY_DIR/apps/kstreams-app
PRODUCER=$KS_BINARY_DIR/apps/kstreams-producer
EXPECTED=$KS_SOURCE_DIR/tests/apps/expected.py
SCHEMA=$KS_SOURCE_DIR/infra/postgres/schema.sql
[[ -x $APP && -x $PRODUCER ]] || fail "build kstreams-app and kstreams-producer first"

p=apps-pg-$$-$RANDOM
schema=${p//-/_}
in=$p-user-events out=$p-analytics dlq=$p-dlq
tmp=$(mktemp -d)
app_pid=
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$KS_PG_DSN" "$@"; }
cleanup() {
        [[ -n $app_pid ]] && kill -KILL "$app_pid" 2>/dev/null || true
        q -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
        rm -rf "$tmp"
}
trap cleanup EXIT

q -c "CREATE SCHEMA $schema" || fail "cannot create schema $schema"
export PGOPTIONS="-c search_path=$schema"
q -f "$SCHEMA" >/dev/null || fail "schema.sql failed in schema $schema"

# Event times end now-ish: the broker's time retention must not delete them.
start=$(date -u -d '-30 min' +%Y-%m-%dT%H:%M:%S.000Z)
"$PRODUCER" --bootstrap-servers "$KS_BOOTSTRAP" --topic "$in" --partitions 1 \
        --count 20000 --users 300 --seed 779 --time-step 50 \
        --start-time "$start" --malformed-rate 0.02 --duplicate-rate 0.02 \
        --out "$tmp/in.jsonl" --quiet || fail "kstreams-producer failed"
records=$(wc -l <"$tmp/in.jsonl")

for job in event-count revenue sessions; do
        python3 "$EXPECTED" --job "$job" --input "$tmp/in.jsonl" --topic "$in" \
                --session-gap 60000
done >"$tmp/want"

"$APP" --job event-count,revenue,sessions --bootstrap-servers "$KS_BOOTSTRAP" \
        --application-id-prefix "$p" --input-topic "$in" --output-topic "$out" \
        --dlq-topic "$dlq" --commit-interval 500 --state-dir "$tmp/state" \
        --session-gap 1m --stats-interval 1s --postgres "$KS_PG_DSN" \
        2>"$tmp/app.log" &
app_pid=$!

# Every job has read all records and committed them (and so its rows).
all_done() {
        kill -0 "$app_pid" 2>/dev/null || fail "kstreams-app exited: $(grep -v ' INFO: ' "$tmp/app.log" | tail -5)"
        local job line
        for job in event-count revenue sessions; do
                line=$(grep "^\[$job\] RUNNING " "$tmp/app.log" | tail -n 1) || return 1
                [[ $line == *" in $records "* && $line == *"  lag 0  "* ]] || return 1
        done
}
wait_for 180 all_done || fail "the jobs did not process and commit $records records in 180 s: $(grep -v ' INFO: ' "$tmp/app.log" | tail -3)"

kill -TERM "$app_pid"
rc=0
wait "$app_pid" || rc=$?
app_pid=
((rc == 0)) || fail "kstreams-app exited with $rc after SIGTERM: $(tail -5 "$tmp/app.log")"

# The rows, as the jobs' JSON values, to compare with the expected ones.
app_table_rows >"$tmp/got"

python3 - "$tmp/want" "$tmp/got" >"$tmp/cmp" 2>&1 <<'EOF' || fail "tables differ from the expected results: $(cat "$tmp/cmp")"
import collections, json, sys
def load(path):
    return collections.Counter(json.dumps(json.loads(l), sort_keys=True)
                               for l in open(path) if l.strip())
want, got = load(sys.argv[1]), load(sys.argv[2])
per_job = collections.Counter(json.loads(k)["job"] for k in want.elements())
if want != got:
    missing, extra = want - got, got - want
    print(f"{sum(missing.values())} missing, {sum(extra.values())} extra")
    for k in list(missing)[:3]:
        print("  missing:", k)
    for k in list(extra)[:3]:
        print("  extra:  ", k)
    sys.exit(1)
if min(per_job[j] for j in ("event-count", "revenue", "sessions")) < 10:
    print(f"too few expected rows to test much: {dict(per_job)}")
    sys.exit(1)
print(", ".join(f"{per_job[j]} {j}" for j in ("event-count", "revenue", "sessions")))
EOF
pass "three jobs --postgres: tables equal the expected rows ($(cat "$tmp/cmp"))"

#!/usr/bin/env bash
# PostgreSQL for the sinks: infra/postgres/schema.sql applies twice without
# error, the tables have the natural-key primary keys the idempotent upserts
# rely on, an upsert replayed leaves one row; and pg.sh brings a second
# ephemeral cluster up and down cleanly.
set -euo pipefail
source "$(dirname "$0")/lib_system.sh"

require_service KS_PG_DSN
require_tool psql

SCHEMA="$KS_SOURCE_DIR/infra/postgres/schema.sql"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$KS_PG_DSN" "$@"; }

# 1. The schema is idempotent: applying it twice more (the fixture applied
#    it once) succeeds.
for run in 1 2; do
        q -f "$SCHEMA" >/dev/null || fail "applying schema.sql failed on run $run"
done

# 2. Tables and their primary keys.
pk() {
        q -c "SELECT string_agg(a.attname, ',' ORDER BY array_position(i.indkey::int2[], a.attnum))
              FROM pg_index i JOIN pg_attribute a
                ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
              WHERE i.indrelid = '$1'::regclass AND i.indisprimary"
}
assert_eq "$(pk event_counts)" "window_start,event_type" "event_counts primary key"
assert_eq "$(pk revenue)" "window_start,currency" "revenue primary key"
assert_eq "$(pk user_sessions)" "user_id,session_start" "user_sessions primary key"
assert_eq "$(pk processed_events)" "event_id" "processed_events primary key"
# Money in integer cents, as kstreams-app's revenue job emits it.
assert_eq "$(q -c "SELECT data_type FROM information_schema.columns
                   WHERE table_schema = current_schema()
                     AND table_name = 'revenue' AND column_name = 'revenue_cents'")" \
        bigint "revenue.revenue_cents type"

# 3. The sink's upsert, replayed, leaves one row with the latest count.
tag="test-$$-$RANDOM"
trap 'q -c "DELETE FROM event_counts WHERE event_type = '"'$tag'"'" >/dev/null 2>&1 || true' EXIT
for count in 3 5 5; do
        q -c "INSERT INTO event_counts (window_start, window_end, event_type, count)
              VALUES ('2024-01-01T00:00:00Z', '2024-01-01T00:01:00Z', '$tag', $count)
              ON CONFLICT (window_start, event_type)
              DO UPDATE SET count = EXCLUDED.count, window_end = EXCLUDED.window_end,
                            updated_at = now()" >/dev/null ||
                fail "upsert into event_counts failed"
done
assert_eq "$(q -c "SELECT count(*) || ':' || max(count) FROM event_counts WHERE event_type = '$tag'")" \
        "1:5" "rows:count after a replayed upsert"

# 4. pg.sh itself: a second, private cluster comes up, answers, goes away.
name="pgtest-$$"
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/ks-pgtest.XXXXXX")
chmod 755 "$run_dir"
cleanup_pg() {
        env -u KS_PG_DSN KS_RUN_DIR="$run_dir" bash "$PG_SH" down "$name" >/dev/null 2>&1 || true
        rm -rf "$run_dir"
}
trap 'cleanup_pg; q -c "DELETE FROM event_counts WHERE event_type = '"'$tag'"'" >/dev/null 2>&1 || true' EXIT
line=$(env -u KS_PG_DSN KS_RUN_DIR="$run_dir" bash "$PG_SH" up "$name") ||
        fail "pg.sh up $name failed"
dsn=${line#KS_PG_DSN=}
[[ $line == KS_PG_DSN=postgresql://* ]] || fail "pg.sh up printed '$line', not KS_PG_DSN=postgresql://..."
assert_eq "$(psql -X -At -d "$dsn" -c "SELECT count(*) FROM information_schema.tables
        WHERE table_schema = 'public' AND table_name IN
        ('event_counts', 'revenue', 'user_sessions', 'processed_events')")" 4 \
        "tables in the new cluster's kstreams database"
env -u KS_PG_DSN KS_RUN_DIR="$run_dir" bash "$PG_SH" down "$name" || fail "pg.sh down $name failed"
if psql -X -At -d "$dsn" -c 'SELECT 1' >/dev/null 2>&1; then
        fail "the cluster still answers after pg.sh down"
fi
[[ ! -e $run_dir/pg-$name ]] || fail "pg.sh down left $run_dir/pg-$name behind"

pass "schema idempotent, keys, upsert replay, pg.sh up/down"

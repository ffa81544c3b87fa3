#!/usr/bin/env bash
# `make demo`: the analytics jobs end to end on a real broker and a real
# PostgreSQL, with no setup by hand.
#
#   run-demo.sh [BUILD_DIR]    (default: build)
#
# 1. Starts a Kafka broker and an ephemeral PostgreSQL with infra/ (unless
#    KS_BOOTSTRAP / KS_PG_DSN name services you run: then it starts
#    nothing, and uses topics and application ids of its own, suffixed
#    with the run's id, and tables in a schema of its own, dropped at the
#    end).
# 2. Produces KS_DEMO_EVENTS (default 300000) seeded user-events with
#    kstreams-producer (6 partitions; 1% malformed, 1% duplicates; event
#    times over the 50 minutes that ended 100 minutes ago).
# 3. Runs kstreams-app --job event-count,revenue,sessions (exactly-once,
#    --postgres, --grace 60m) until each job has read every record and
#    committed all of it (its statistics line: in = records produced, lag
#    0, repartition topics included). The grace covers the backlog's
#    50 minutes: the 6 partitions are read at their own paces, so the
#    repartition topics get event times up to the whole span out of order,
#    and a shorter grace drops some as late (24% with 10 s).
# 4. Then produces 12 closing events, one per event type and currency, to
#    each partition, 70 minutes after the last event (more than window or
#    session gap plus grace): they move every task's stream time past every
#    window and session, so every result is emitted (theirs stay open and
#    are not shown). Produced before the backlog is processed they could
#    run ahead of it. Waits for them the same way, checks that no job
#    dropped a record as late, and stops the jobs with SIGTERM.
# 5. Prints the results read back from event-analytics (kcat,
#    isolation.level=read_committed) and from PostgreSQL (psql), and checks
#    that both hold the same windows.
# 6. Stops what it started, on success, failure or Ctrl-C.
#
# Environment:
#   KS_BOOTSTRAP, KS_PG_DSN   use these services instead of starting them
#   KS_DEMO_EVENTS            events to produce (default 300000)
#   KS_DEMO_DEAD_LETTERS      also write the dead-letter topic there (kcat -J)
#   KS_DEMO_TIMEOUT           seconds the jobs may take (default 120)
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
fi
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${1:-$REPO/build}" && pwd)
APP=$BUILD/apps/kstreams-app
PRODUCER=$BUILD/apps/kstreams-producer
EVENTS=${KS_DEMO_EVENTS:-300000}
TIMEOUT=${KS_DEMO_TIMEOUT:-120}
SEED=2026

say() { echo "demo: $*" >&2; }
die() {
        [[ -t 2 ]] && printf '\n' >&2
        say "error: $*"
        exit 1
}
[[ -x $APP && -x $PRODUCER ]] || die "$APP or $PRODUCER is missing: run 'make' first"
for tool in kcat psql python3; do
        command -v "$tool" >/dev/null || die "'$tool' is not installed (bash infra/deps.sh install)"
done
[[ $EVENTS =~ ^[0-9]+$ ]] && ((EVENTS > 0)) || die "KS_DEMO_EVENTS=$EVENTS is not a positive number"

run=demo-$(date +%s)-$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ks-demo.XXXXXX")
app_pid= kafka_started= pg_started= pg_schema=
cleanup() {
        local rc=$?
        trap - EXIT INT TERM
        if [[ -n $app_pid ]]; then
                kill -TERM "$app_pid" 2>/dev/null || true
                wait "$app_pid" 2>/dev/null || true
        fi
        # Without the variables: with them set, the scripts stop nothing.
        if [[ -n $pg_schema ]]; then
                psql -X -q -d "$KS_PG_DSN" -c "DROP SCHEMA IF EXISTS $pg_schema CASCADE" >/dev/null 2>&1 ||
                        say "warning: could not drop schema $pg_schema"
        fi
        if [[ -n $kafka_started ]]; then
                env -u KS_BOOTSTRAP bash "$REPO/infra/kafka/kafka.sh" down "$run" >/dev/null 2>&1 ||
                        say "warning: kafka.sh down $run failed"
        fi
        if [[ -n $pg_started ]]; then
                env -u KS_PG_DSN bash "$REPO/infra/postgres/pg.sh" down "$run" >/dev/null 2>&1 ||
                        say "warning: pg.sh down $run failed"
        fi
        if ((rc)) && [[ -f $tmp/app.log ]]; then
                say "the jobs' last log lines:"
                grep -v ' INFO: ' "$tmp/app.log" | tail -n 8 >&2 || true
        fi
        rm -rf "$tmp"
        if [[ -n $kafka_started$pg_started ]]; then
                say "stopped what it started:${kafka_started:+ the Kafka broker}${pg_started:+${kafka_started:+,} PostgreSQL}"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

t0=$SECONDS
# ---- services -------------------------------------------------------------
if [[ -n ${KS_BOOTSTRAP:-} ]]; then
        say "Kafka: $KS_BOOTSTRAP (KS_BOOTSTRAP; nothing started)"
        in=user-events-$run out=event-analytics-$run dlq=user-events-dlq-$run
else
        bash "$REPO/infra/deps.sh" ensure-services >&2 || die "the Kafka jars, java or PostgreSQL are missing"
        kafka_started=1
        line=$(bash "$REPO/infra/kafka/kafka.sh" up "$run" 2>"$tmp/kafka.log") ||
                die "kafka.sh up failed: $(tail -n 3 "$tmp/kafka.log")"
        KS_BOOTSTRAP=${line#KS_BOOTSTRAP=}
        say "Kafka: started a broker on $KS_BOOTSTRAP"
        in=user-events out=event-analytics dlq=user-events-dlq
fi
if [[ -n ${KS_PG_DSN:-} ]]; then
        # The tables in a schema of this run's own (search_path through
        # PGOPTIONS, which libpq reads), dropped at the end: your tables
        # and other runs' rows stay apart.
        pg_schema=kstreams_${run//-/_}
        psql -X -q -v ON_ERROR_STOP=1 -d "$KS_PG_DSN" -c "CREATE SCHEMA $pg_schema" 2>"$tmp/pg.log" ||
                die "cannot create schema $pg_schema in KS_PG_DSN: $(tail -n 3 "$tmp/pg.log")"
        export PGOPTIONS="-c search_path=$pg_schema"
        psql -X -q -v ON_ERROR_STOP=1 -d "$KS_PG_DSN" -f "$REPO/infra/postgres/schema.sql" >/dev/null 2>"$tmp/pg.log" ||
                die "schema.sql failed in schema $pg_schema: $(tail -n 3 "$tmp/pg.log")"
        say "PostgreSQL: $KS_PG_DSN (KS_PG_DSN; nothing started), schema $pg_schema"
else
        pg_started=1
        line=$(bash "$REPO/infra/postgres/pg.sh" up "$run" 2>"$tmp/pg.log") ||
                die "pg.sh up failed: $(tail -n 3 "$tmp/pg.log")"
        KS_PG_DSN=${line#KS_PG_DSN=}
        say "PostgreSQL: started on $KS_PG_DSN"
fi
export KS_BOOTSTRAP KS_PG_DSN
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$KS_PG_DSN" "$@"; }

# ---- events -----------------------------------------------------------------
step=10 # ms between events: 300000 events span 50 minutes
partitions=6
start_ms=$((($(date +%s) - 150 * 60) / 60 * 60 * 1000))
start=$(date -u -d "@$((start_ms / 1000))" +%Y-%m-%dT%H:%M:%S.000Z)
say "producing $EVENTS events (seed $SEED, from $start, one every ${step} ms) to $in"
"$PRODUCER" --bootstrap-servers "$KS_BOOTSTRAP" --topic "$in" --partitions "$partitions" \
        --count "$EVENTS" --users 2000 --seed "$SEED" --start-time "$start" \
        --time-step "$step" --malformed-rate 0.01 --duplicate-rate 0.01 ||
        die "kstreams-producer failed"
# The closing events: 70 minutes after the last event, more than the window
# plus grace and the session gap plus grace; produced once the jobs have
# processed everything else, so they reach each repartition topic last.
close_ms=$((start_ms + EVENTS * step + 70 * 60 * 1000))
close_iso=$(date -u -d "@$((close_ms / 1000))" +%Y-%m-%dT%H:%M:%S.000Z)
closing_events() {
        local i=0 t type currency
        for t in page_view button_click form_submit purchase add_to_cart \
                remove_from_cart search login logout signup purchase:EUR purchase:GBP; do
                type=${t%%:*} currency=USD
                [[ $t == *:* ]] && currency=${t#*:}
                printf 'demo-closer|{"event_id":"%s-close-%d","timestamp":"%s","event_type":"%s","user_id":"demo-closer","version":"1.0","data":{"amount":0.0,"currency":"%s"}}\n' \
                        "$run" "$i" "$close_iso" "$type" "$currency"
                i=$((i + 1))
        done
}
closing_events >"$tmp/closers"
closers=$(($(wc -l <"$tmp/closers") * partitions))
say "produced $EVENTS events in $partitions partitions"

# ---- the jobs -----------------------------------------------------------------
"$APP" --job event-count,revenue,sessions --bootstrap-servers "$KS_BOOTSTRAP" \
        --application-id-prefix "$run" --input-topic "$in" --output-topic "$out" \
        --dlq-topic "$dlq" --session-gap 5m --grace 60m --commit-interval 1000 \
        --processing-guarantee exactly_once_v2 --stats-interval 1s --state-dir "$tmp/state" --postgres "$KS_PG_DSN" \
        2>"$tmp/app.log" &
app_pid=$!

# The newest statistics line of job $1, as "in lag windows".
job_stats() {
        grep "^\[$1\] RUNNING " "$tmp/app.log" | tail -n 1 |
                sed -E 's/.* in ([0-9]+) .* windows ([0-9]+)  lag ([0-9?]+) .*/\1 \3 \2/'
}
deadline=$((SECONDS + TIMEOUT))
# wait_all TOTAL: until every job has read TOTAL records and committed them.
wait_all() {
        local total=$1 done_jobs job seen lag windows progress
        while :; do
                kill -0 "$app_pid" 2>/dev/null || { wait "$app_pid" || true; app_pid=; die "kstreams-app exited early"; }
                done_jobs=0 progress=
                for job in event-count revenue sessions; do
                        read -r seen lag windows <<<"$(job_stats "$job")" || true
                        progress+=" $job ${seen:-0}/$total (lag ${lag:-?}, ${windows:-0} windows)"
                        [[ ${seen:-0} -ge $total && ${lag:-} == 0 ]] && done_jobs=$((done_jobs + 1))
                done
                # One line redrawn on a terminal; a new line per change in a log.
                if [[ -t 2 ]]; then
                        printf '\rdemo: processing:%s ' "$progress" >&2
                elif [[ $progress != "${last_progress:-}" ]]; then
                        echo "demo: processing:$progress" >&2
                        last_progress=$progress
                fi
                ((done_jobs == 3)) && break
                ((SECONDS < deadline)) || die "the jobs did not finish within $TIMEOUT s (KS_DEMO_TIMEOUT)"
                sleep 0.5
        done
        [[ -t 2 ]] && printf '\n' >&2
        return 0
}
wait_all "$EVENTS"
for ((p = 0; p < partitions; p++)); do
        kcat -P -b "$KS_BOOTSTRAP" -t "$in" -p "$p" -K '|' -z lz4 <"$tmp/closers" ||
                die "kcat could not produce the closing events"
done
total=$((EVENTS + closers))
say "processed; produced $closers closing events at $close_iso ($((closers / partitions)) per partition)"
wait_all "$total"
late=$(for job in event-count revenue sessions; do
        grep "^\[$job\] RUNNING " "$tmp/app.log" | tail -n 1 | sed -E 's/.*  late ([0-9]+) .*/\1/'
done | paste -sd+ | bc)
((late == 0)) || die "$late records were dropped as late"
kill -TERM "$app_pid"
rc=0
wait "$app_pid" || rc=$?
app_pid=
((rc == 0)) || die "kstreams-app exited with $rc after SIGTERM"
say "all three jobs (exactly-once) read and committed all $total records, none late, in $((SECONDS - t0)) s since the start; stopped them"

# ---- results ----------------------------------------------------------------------
kcat -C -J -e -q -o beginning -b "$KS_BOOTSTRAP" -t "$out" \
        -X isolation.level=read_committed >"$tmp/out.jsonl" ||
        die "kcat could not read $out"
dead=$(kcat -C -e -q -o beginning -b "$KS_BOOTSTRAP" -t "$dlq" -f 'x\n' | wc -l)
if [[ -n ${KS_DEMO_DEAD_LETTERS:-} ]]; then
        kcat -C -J -e -q -o beginning -b "$KS_BOOTSTRAP" -t "$dlq" >"$KS_DEMO_DEAD_LETTERS"
fi
echo
echo "== $out (Kafka, read_committed) =="
python3 "$REPO/apps/demo/summary.py" "$tmp/out.jsonl" --totals "$tmp/kafka-totals" ||
        die "event-analytics lacks the results of a job"
echo "  dead-lettered: $dead (each of the 3 jobs dead-letters every invalid event)${KS_DEMO_DEAD_LETTERS:+, written to $KS_DEMO_DEAD_LETTERS}"

# This run's rows only (an external database may hold other runs'): its
# windows start at or after its first event and before the closing events.
range="BETWEEN to_timestamp($start_ms / 1000.0) AND to_timestamp($close_ms / 1000.0)"
echo
echo "== PostgreSQL =="
q -F ' ' -c "SELECT
        (SELECT count(*) || ' ' || coalesce(sum(count), 0) FROM event_counts
         WHERE window_start $range),
        (SELECT count(*) || ' ' || coalesce(sum(revenue_cents), 0) FROM revenue
         WHERE window_start $range),
        (SELECT count(*) || ' ' || coalesce(sum(events), 0) FROM user_sessions
         WHERE session_start $range AND user_id <> 'demo-closer')" \
        >"$tmp/pg-totals" || die "cannot query PostgreSQL"
read -r pg_counts _ pg_revenue _ pg_sessions _ <"$tmp/pg-totals"
echo "  rows: event_counts $pg_counts, revenue $pg_revenue, user_sessions $pg_sessions"
echo "  Top 5 revenue windows:"
q -F ' | ' -c "SELECT to_char(window_start AT TIME ZONE 'UTC', 'HH24:MI'), currency,
                      to_char(revenue_cents / 100.0, 'FM999999990.00'), purchases,
                      to_char(avg_order_value_cents / 100.0, 'FM99990.00')
               FROM revenue WHERE window_start $range
               ORDER BY revenue_cents DESC, window_start LIMIT 5" | sed 's/^/    /'
echo "  Revenue per currency:"
q -F ' | ' -c "SELECT currency, to_char(sum(revenue_cents) / 100.0, 'FM999999990.00'),
                      sum(purchases) || ' purchases'
               FROM revenue WHERE window_start $range
               GROUP BY currency ORDER BY sum(revenue_cents) DESC" | sed 's/^/    /'
echo "  Sessions:"
q -F ' | ' -c "SELECT count(*) || ' sessions',
                      round(avg(events), 1) || ' events avg',
                      round(avg(duration_ms) / 60000.0, 1) || ' min avg',
                      sum(purchases) || ' purchases',
                      to_char(sum(revenue_cents) / 100.0, 'FM999999990.00') || ' revenue'
               FROM user_sessions WHERE session_start $range
                                    AND user_id <> 'demo-closer'" | sed 's/^/    /'

# Kafka and PostgreSQL got the same results from the same jobs: rows, and
# the sums of counts, revenue and session events.
cmp -s "$tmp/kafka-totals" "$tmp/pg-totals" ||
        die "event-analytics and PostgreSQL differ (rows and sums per job): $(cat "$tmp/kafka-totals") vs $(cat "$tmp/pg-totals")"
echo
say "done in $((SECONDS - t0)) s: $in -> 3 jobs -> $out and PostgreSQL agree: $pg_counts + $pg_revenue + $pg_sessions results, the same sums"

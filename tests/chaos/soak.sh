#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions run through trap, wait_for and "act_$kind"
# A chaos soak (issue 14): the three jobs of kstreams-app (event-count,
# revenue, sessions, with --postgres) under exactly_once_v2, in three
# instances sharing their groups (one --application-id-prefix, a state dir
# each), on a 3-node KRaft cluster and a PostgreSQL that this script starts
# itself. kstreams-producer writes seeded user-events (2% malformed), paced
# at SOAK_RATE events/s for SOAK_MINUTES, to Kafka and to a file. Meanwhile
# a chaos loop takes one action at a time, picked at random from a seeded
# sequence (printed; the first four are the four kinds in a shuffled order,
# so that even a short run has each):
#   kill    SIGKILL a random instance that has tasks (else any), start it
#           again (same state dir)
#   broker  restart one broker: kafka.sh stop-broker N, 5 s, start-broker N
#   pg      stop PostgreSQL for 10 s (pg.sh stop: every connection drops)
#   scale   add a 4th instance (fresh state dir), or remove it (SIGTERM)
# with SOAK_PAUSE seconds between actions. At least two instances run at
# any time, and an instance that exits on its own fails the soak.
#
# At the end the chaos stops, the producer finishes, every instance runs
# until its statistics lines show lag 0 for every job (input and
# repartition topics read and committed), and is stopped with SIGTERM
# (exit 0 required). Then the tables and the output and dead-letter topics
# (kcat, read_committed) are compared with tests/apps/expected.py's results
# computed from the producer's file alone, by tests/apps/check_crash.py
# --exact: every row and every output record equals its expected value,
# each exactly once, none missing, none extra; each invalid event
# dead-lettered exactly once per job. It prints the actions survived by
# kind, records in, records checked, and 0 lost / 0 doubled.
#
# One input partition, as in tests/system/test_apps_crash.sh: expected.py
# models one record at a time in file order, and with several input
# partitions the repartitioned jobs' late-record drops would depend on how
# the runtime interleaves them. So each job has one input task (and
# event-count and revenue one repartition task): the instances share the
# jobs' tasks, and a kill or a removal moves them to another instance.
#
#   soak.sh [--help]          (make soak; CI: SOAK_MINUTES=2)
#
# Environment:
#   SOAK_MINUTES   how long the producer and the chaos run (default 3)
#   SOAK_RATE      events/s (default 200)
#   SOAK_SEED      the chaos sequence's seed (default: from the clock; printed)
#   SOAK_PAUSE     seconds between two actions (default 4)
#   KS_BINARY_DIR  the build (default ./build)
#
# Failing, it keeps its logs (path printed). It stops whatever it started.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
        sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
fi
[[ $# -eq 0 ]] || {
        echo "usage: soak.sh [--help]" >&2
        exit 2
}
# shellcheck disable=SC2034 # read by lib_system.sh
KS_SCRIPT_NAME=soak
# shellcheck source-path=SCRIPTDIR source=../system/lib_system.sh
source "$(dirname "${BASH_SOURCE[0]}")/../system/lib_system.sh"

MINUTES=${SOAK_MINUTES:-3}
RATE=${SOAK_RATE:-200}
SEED=${SOAK_SEED:-$(($(date +%s) % 32768))}
PAUSE=${SOAK_PAUSE:-4}
[[ $MINUTES =~ ^[1-9][0-9]*$ && $RATE =~ ^[1-9][0-9]*$ && $SEED =~ ^[0-9]+$ &&
        $PAUSE =~ ^[0-9]+$ ]] || fail "SOAK_MINUTES, SOAK_RATE (> 0), SOAK_SEED, SOAK_PAUSE must be integers"
for t in psql kcat python3 java; do require_tool "$t"; done
APP=$KS_BINARY_DIR/apps/kstreams-app
PRODUCER=$KS_BINARY_DIR/apps/kstreams-producer
EXPECTED=$KS_SOURCE_DIR/tests/apps/expected.py
CHECK=$KS_SOURCE_DIR/tests/apps/check_crash.py
SCHEMA=$KS_SOURCE_DIR/infra/postgres/schema.sql
[[ -x $APP && -x $PRODUCER ]] || fail "build kstreams-app and kstreams-producer first ($KS_BINARY_DIR)"
JOBS=(event-count revenue sessions)
EVENTS=$((RATE * MINUTES * 60))
BASE=3 # instances 1..3 always, 4 added and removed

name=soak-$$
p=soak-$$-$RANDOM
schema=${p//-/_}
in=$p-user-events out=$p-analytics dlq=$p-dlq
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ks-soak.XXXXXX")
cluster_up='' pg_up='' producer_pid='' ok=''
declare -A pid=() run=()
KS_PG_DSN=
BOOT=

pg() { env -u KS_PG_DSN bash "$PG_SH" "$@"; }
kafka() { bash "$KAFKA_SH" "$@"; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$KS_PG_DSN" "$@"; }
note() { echo "soak: [$(date -u +%H:%M:%S)] $*"; }

cleanup() {
        local i
        for i in "${!pid[@]}"; do
                if [[ -n ${pid[$i]} ]]; then kill -KILL "${pid[$i]}" 2>/dev/null || true; fi
        done
        if [[ -n $producer_pid ]]; then kill -KILL "$producer_pid" 2>/dev/null || true; fi
        wait 2>/dev/null || true
        if [[ -n $pg_up ]]; then pg down "$name" >/dev/null 2>&1 || true; fi
        if [[ -n $cluster_up ]]; then kafka cluster-down "$name" >/dev/null 2>&1 || true; fi
        if [[ -n $ok ]]; then
                rm -rf "$tmp"
        else
                echo "soak: logs kept in $tmp" >&2
        fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note "seed $SEED (SOAK_SEED=$SEED replays the sequence of actions), $MINUTES min at $RATE events/s: $EVENTS events"
line=$(kafka cluster-up "$name" 2>"$tmp/cluster.log") || fail "kafka.sh cluster-up: $(tail -3 "$tmp/cluster.log")"
cluster_up=1
BOOT=${line#KS_BOOTSTRAP=}
line=$(pg up "$name" 2>"$tmp/pg.log") || fail "pg.sh up: $(tail -3 "$tmp/pg.log")"
pg_up=1
KS_PG_DSN=${line#KS_PG_DSN=}
note "cluster $BOOT, PostgreSQL $KS_PG_DSN"

q -c "CREATE SCHEMA $schema" || fail "cannot create schema $schema"
export PGOPTIONS="-c search_path=$schema"
q -f "$SCHEMA" >/dev/null || fail "schema.sql failed in schema $schema"
# Replicated on the three brokers, two in sync for a write: a restarted
# broker loses nothing.
for t in "$in" "$out" "$dlq"; do
        topics --bootstrap-server "$BOOT" --create --topic "$t" --partitions 1 \
                --replication-factor 3 --config min.insync.replicas=2 >/dev/null ||
                fail "creating topic $t failed"
done

# Event times end about now: time retention must not delete them.
start=$(date -u -d "-$((EVENTS * 20 / 1000 + 120)) sec" +%Y-%m-%dT%H:%M:%S.000Z)
"$PRODUCER" --bootstrap-servers "$BOOT" --topic "$in" --partitions 1 \
        --count "$EVENTS" --rate "$RATE" --users 500 --seed "$SEED" --time-step 20 \
        --start-time "$start" --malformed-rate 0.02 \
        --out "$tmp/in.jsonl" --quiet 2>"$tmp/producer.log" &
producer_pid=$!
t0=$SECONDS

log_of() { echo "$tmp/app$1-${run[$1]}.log"; }

start_instance() { # SLOT
        local i=$1
        run[$i]=$((${run[$i]:-0} + 1))
        "$APP" --job event-count,revenue,sessions --bootstrap-servers "$BOOT" \
                --application-id-prefix "$p" --input-topic "$in" --output-topic "$out" \
                --dlq-topic "$dlq" --commit-interval 500 --state-dir "$tmp/state$i" \
                --session-gap 1m --stats-interval 500ms --postgres "$KS_PG_DSN" \
                --processing-guarantee exactly_once_v2 \
                2>"$(log_of "$i")" &
        pid[$i]=$!
}

running() { # the running slots
        local i
        for i in $(printf '%s\n' "${!pid[@]}" | sort -n); do
                [[ -n ${pid[$i]} ]] && echo "$i"
        done
        return 0
}

# Every instance meant to run does.
check_alive() {
        local i
        for i in $(running); do
                kill -0 "${pid[$i]}" 2>/dev/null ||
                        fail "instance $i (run ${run[$i]}) exited on its own: $(grep -v ' INFO: ' "$(log_of "$i")" | tail -5)"
        done
}

# field SLOT JOB NAME: NAME's number in the last RUNNING line of JOB in the
# slot's current log.
field() {
        local line
        line=$(grep "^\[$2\] RUNNING " "$(log_of "$1")" | tail -n 1) || return 0
        [[ $line =~ \ $3\ ([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
        return 0
}

# Each job has processed records and committed in some instance: a group
# with committed offsets (see test_apps_crash.sh on kills before that).
started_up() {
        check_alive
        local job i n c found
        for job in "${JOBS[@]}"; do
                found=
                for i in $(running); do
                        n=$(field "$i" "$job" in) c=$(field "$i" "$job" commits)
                        [[ -n $n && -n $c ]] && ((n > 0 && c > 0)) && found=1
                done
                [[ -n $found ]] || return 1
        done
}

# Every running instance's last lines show lag 0 for every job.
all_done() {
        check_alive
        local job i
        for i in $(running); do
                for job in "${JOBS[@]}"; do
                        [[ $(field "$i" "$job" lag) == 0 ]] || return 1
                done
        done
}

lines_now() {
        local i
        for i in $(running); do
                grep -h '^\[.*\] RUNNING ' "$(log_of "$i")" | tail -n 3 | sed "s/^/    $i: /"
        done
}

# sleep_alive SECONDS: sleep, checking the instances every second.
sleep_alive() {
        local end=$((SECONDS + $1))
        while ((SECONDS < end)); do
                check_alive
                sleep 1
        done
}

declare -A done_n=([kill]=0 [broker]=0 [pg]=0 [scale-up]=0 [scale-down]=0)

# An instance with tasks (the jobs' last lines), else any running one.
busy() {
        local i job n
        for i in $(running); do
                for job in "${JOBS[@]}"; do
                        n=$(field "$i" "$job" tasks)
                        if [[ -n $n ]] && ((n > 0)); then
                                echo "$i"
                                break
                        fi
                done
        done
        return 0
}

act_kill() {
        local slots i
        mapfile -t slots < <(busy)
        ((${#slots[@]})) || mapfile -t slots < <(running)
        i=${slots[RANDOM % ${#slots[@]}]}
        note "kill: SIGKILL instance $i (pid ${pid[$i]}); its last lines:"
        grep -h '^\[.*\] RUNNING ' "$(log_of "$i")" | tail -n 3 | sed 's/^/    /'
        kill -KILL "${pid[$i]}"
        wait "${pid[$i]}" 2>/dev/null || true
        pid[$i]=
        sleep_alive $((1 + RANDOM % 3))
        start_instance "$i"
        note "kill: instance $i started again (run ${run[$i]})"
        done_n[kill]=$((done_n[kill] + 1))
}

act_broker() {
        local n=$((1 + RANDOM % 3))
        note "broker: stop broker $n"
        kafka stop-broker "$n" "$name" 2>>"$tmp/cluster.log" || fail "stop-broker $n failed"
        sleep_alive 5
        kafka start-broker "$n" "$name" 2>>"$tmp/cluster.log" ||
                fail "start-broker $n failed: $(tail -3 "$tmp/cluster.log")"
        note "broker: broker $n runs again"
        done_n[broker]=$((done_n[broker] + 1))
}

act_pg() {
        note "pg: PostgreSQL stopped for 10 s"
        pg stop "$name" 2>>"$tmp/pg.log" || fail "pg.sh stop failed"
        sleep_alive 10
        pg start "$name" 2>>"$tmp/pg.log" || fail "pg.sh start failed: $(tail -3 "$tmp/pg.log")"
        note "pg: PostgreSQL runs again"
        done_n[pg]=$((done_n[pg] + 1))
}

act_scale() {
        local i=$((BASE + 1)) rc=0
        if [[ -n ${pid[$i]:-} ]]; then
                note "scale: remove instance $i (SIGTERM)"
                kill -TERM "${pid[$i]}"
                wait "${pid[$i]}" || rc=$?
                pid[$i]=
                ((rc == 0)) || fail "instance $i exited with $rc after SIGTERM: $(tail -5 "$(log_of "$i")")"
                done_n[scale-down]=$((done_n[scale-down] + 1))
        else
                rm -rf "$tmp/state$i"
                start_instance "$i"
                note "scale: instance $i added (pid ${pid[$i]})"
                done_n[scale-up]=$((done_n[scale-up] + 1))
        fi
}

has_input() { kcat -b "$BOOT" -C -t "$in" -o beginning -c 1 -e -q >/dev/null 2>&1; }
wait_for 60 has_input || fail "the producer wrote nothing in 60 s: $(tail -3 "$tmp/producer.log")"
for ((i = 1; i <= BASE; i++)); do start_instance "$i"; done
wait_for 180 started_up || fail "the jobs did not start processing and committing in 180 s: $(lines_now)"
note "$BASE instances run, every job has committed; chaos until the producer's end"
lines_now

RANDOM=$SEED
kinds=(kill broker pg scale)
weighted=(kill kill broker pg scale) # kill twice as often as each other kind
first=("${kinds[@]}")
for ((i = ${#first[@]} - 1; i > 0; i--)); do # Fisher-Yates
        j=$((RANDOM % (i + 1)))
        t=${first[i]} first[i]=${first[j]} first[j]=$t
done
deadline=$((t0 + MINUTES * 60))
actions=0
while ((SECONDS < deadline)); do
        if ((actions < ${#first[@]})); then
                kind=${first[actions]}
        else
                kind=${weighted[RANDOM % ${#weighted[@]}]}
        fi
        actions=$((actions + 1))
        note "action $actions: $kind"
        "act_$kind"
        sleep_alive "$PAUSE"
done
note "chaos over after $actions actions; waiting for the producer"

wait "$producer_pid" || fail "kstreams-producer failed: $(tail -3 "$tmp/producer.log")"
producer_pid=
records_in=$(wc -l <"$tmp/in.jsonl")
((records_in == EVENTS)) || fail "the producer's file has $records_in records, not $EVENTS"
for job in "${JOBS[@]}"; do
        python3 "$EXPECTED" --job "$job" --input "$tmp/in.jsonl" --topic "$in" \
                --session-gap 60000
done >"$tmp/want"
python3 "$EXPECTED" --job revenue --input "$tmp/in.jsonl" --topic "$in" \
        --dlq >"$tmp/want-dlq"

wait_for 300 all_done || fail "the instances did not process and commit everything in 300 s: $(lines_now)"
note "every instance shows lag 0 for every job:"
lines_now
for i in $(running); do
        kill -TERM "${pid[$i]}"
done
for i in $(running); do
        rc=0
        wait "${pid[$i]}" || rc=$?
        pid[$i]=
        ((rc == 0)) || fail "instance $i exited with $rc after SIGTERM: $(tail -5 "$(log_of "$i")")"
done

# The tables, as the jobs' JSON values (as test_apps_crash.sh dumps them).
app_table_rows >"$tmp/rows"
kcat -b "$BOOT" -C -J -e -o beginning -q -X isolation.level=read_committed \
        -t "$out" >"$tmp/out.jsonl"
kcat -b "$BOOT" -C -J -e -o beginning -q -X isolation.level=read_committed \
        -t "$dlq" >"$tmp/dlq.jsonl"

python3 "$CHECK" --exact "$tmp/want" "$tmp/rows" "$tmp/out.jsonl" "$tmp/want-dlq" \
        "$tmp/dlq.jsonl" "${#JOBS[@]}" >"$tmp/cmp" 2>&1 || fail "$(cat "$tmp/cmp")"

want=$(wc -l <"$tmp/want") want_dlq=$(wc -l <"$tmp/want-dlq")
rows=$(wc -l <"$tmp/rows") topic=$(wc -l <"$tmp/out.jsonl") dl=$(wc -l <"$tmp/dlq.jsonl")
echo "soak: survived $actions actions in $((SECONDS - t0)) s (seed $SEED):" \
        "kill ${done_n[kill]}, broker restart ${done_n[broker]}," \
        "PostgreSQL outage ${done_n[pg]}, instance added ${done_n[scale-up]}," \
        "removed ${done_n[scale-down]}"
echo "soak: records in $records_in ($want_dlq invalid); expected results $want"
echo "soak: records checked $((rows + topic + dl)): $rows table rows, $topic output records, $dl dead letters"
echo "soak: lost 0, doubled 0 ($(cat "$tmp/cmp"))"
ok=1
pass "$MINUTES min, $actions actions, exactly once"

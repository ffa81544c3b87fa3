#!/usr/bin/env bash
# kstreams-devbroker (librdkafka's mock cluster as a process): other
# processes reach it over TCP (kcat here), --topic makes topics with the
# asked partition count, --port gives a fixed bootstrap address, unknown
# topics are auto-created with 4 partitions, and SIGTERM/SIGINT stop it
# cleanly. See testkit/tools/DEVBROKER.md.
set -euo pipefail
source "$(dirname "$0")/lib_system.sh"

require_tool kcat
BIN="$KS_BINARY_DIR/testkit/kstreams-devbroker"
[[ -x $BIN ]] || fail "$BIN is not built (it is part of the build: cmake --build)"

work=$(mktemp -d "${TMPDIR:-/tmp}/ks-devbroker-test.XXXXXX")
pids=()
cleanup() {
        local p
        for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
        rm -rf "$work"
}
trap cleanup EXIT

# start_devbroker TAG ARGS...: runs it, waits for its KS_BOOTSTRAP line,
# sets $pid and $bootstrap.
start_devbroker() {
        local tag=$1
        shift
        "$BIN" "$@" >"$work/$tag.out" 2>"$work/$tag.err" &
        pid=$!
        pids+=("$pid")
        has_line() { grep -q '^KS_BOOTSTRAP=' "$work/$tag.out"; }
        wait_for 10 has_line || fail "$tag: no KS_BOOTSTRAP line in 10s: $(cat "$work/$tag.err")"
        bootstrap=$(sed -n 's/^KS_BOOTSTRAP=//p' "$work/$tag.out")
}

# stop_devbroker SIGNAL: sends it, expects exit status 0 within 10 s.
stop_devbroker() {
        local sig=$1 i rc
        kill "-$sig" "$pid"
        for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && fail "devbroker still running 10s after SIG$sig"
        rc=0
        wait "$pid" || rc=$?
        assert_eq "$rc" 0 "devbroker exit status after SIG$sig"
}

# 1. --help and a bad option.
"$BIN" --help | grep -q -- '--topic NAME:PARTS' || fail "--help does not describe --topic"
rc=0
"$BIN" --no-such-option >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 2 "exit status for an unknown option"

# 2. A fixed bootstrap port, a topic with 3 partitions, a kcat roundtrip of
#    keyed records with headers.
free_port port
start_devbroker fixed --port "$port" --topic orders:3
assert_eq "$bootstrap" "127.0.0.1:$port" "bootstrap with --port"
meta=$(kcat -b "$bootstrap" -L -m 5) || fail "kcat -L against the devbroker failed"
grep -q 'topic "orders" with 3 partitions' <<<"$meta" || fail "no 3-partition topic orders: $meta"
for ((i = 0; i < 100; i++)); do printf 'k%d:v%d\n' "$i" "$i"; done |
        kcat -b "$bootstrap" -P -t orders -K: -H app=devbroker-test || fail "kcat -P failed"
out=$(kcat -b "$bootstrap" -C -t orders -o beginning -e -J -q -m 5) || fail "kcat -C failed"
assert_eq "$(grep -c '"headers":\["app","devbroker-test"\]' <<<"$out" || true)" 100 \
        "records read back with their header"
assert_eq "$(grep -c '"key":"k42","payload":"v42"' <<<"$out" || true)" 1 "record k42"
parts=$(grep -o '"partition":[0-9]*' <<<"$out" | sort -u | wc -l)
assert_eq "$parts" 3 "partitions the 100 keyed records spread over"

# 3. The same port again cannot be taken: the second one fails, clearly.
rc=0
timeout 10 "$BIN" --port "$port" >"$work/dup.out" 2>"$work/dup.err" || rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] || fail "a second devbroker on port $port did not fail (rc $rc)"
grep -q "cannot listen on 127.0.0.1:$port" "$work/dup.err" ||
        fail "no clear message for a taken port: $(cat "$work/dup.err")"

# 4. Auto-created topics get 4 partitions.
echo x | kcat -b "$bootstrap" -P -t auto-made || fail "producing to an unknown topic failed"
kcat -b "$bootstrap" -L -t auto-made -m 5 | grep -q 'topic "auto-made" with 4 partitions' ||
        fail "auto-created topic does not have 4 partitions"
stop_devbroker TERM

# 5. Three brokers, kernel-chosen ports; SIGINT stops it.
start_devbroker three --brokers 3 --topic t:6:3
[[ $bootstrap == 127.0.0.1:*,127.0.0.1:*,127.0.0.1:* ]] || fail "three brokers: bootstrap '$bootstrap'"
assert_eq "$(kcat -b "$bootstrap" -L -m 5 | grep -c '^  broker [0-9]* at ' || true)" 3 \
        "brokers in metadata"
seq 1 20 | kcat -b "$bootstrap" -P -t t || fail "produce to the 3-broker mock failed"
assert_eq "$(kcat -b "$bootstrap" -C -t t -o beginning -e -q -m 5 | wc -l)" 20 "records on 3 brokers"
stop_devbroker INT

pass "help, --port, topics, kcat roundtrip, auto-create, 3 brokers, clean stops"

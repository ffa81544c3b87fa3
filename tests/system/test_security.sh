#!/usr/bin/env bash
# A topology over SASL/PLAIN + TLS: the test makes a CA, a broker
# certificate and an encrypted broker key with openssl, starts its own
# broker with a SASL_SSL listener (infra/kafka/kafka.sh, KS_KAFKA_SASL_USERS),
# and runs ks_test_app (a count, so consumer, producer, admin client and,
# on the second run, the restore consumer all connect) with
# security.protocol=SASL_SSL and the sasl.* / ssl.* settings only:
# - the counts come out right, and a second run with an empty state
#   directory restores the store from its changelog over SASL_SSL;
# - a wrong password fails start-up at once with an error that says
#   authentication failed (startup.timeout.ms is 60 s: not a timeout);
# - no secret (sasl.password, ssl.key.password, ssl.keystore.password, the
#   password in a PostgreSQL connection string) appears in anything the runs
#   logged, librdkafka's configuration dump (debug=conf), the PostgreSQL
#   sink's connection errors and the metrics / stats lines included.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib_system.sh"

require_tool kcat
require_tool openssl
require_tool java
APP=$KS_BINARY_DIR/tests/ks_test_app
[[ -x $APP ]] || fail "build ks_test_app first"

tmp=$(mktemp -d)
name=sec-$$
app_pid=
cleanup() {
        [[ -n $app_pid ]] && kill -KILL "$app_pid" 2>/dev/null || true
        bash "$KAFKA_SH" down "$name" >/dev/null 2>&1 || true
        rm -rf "$tmp"
}
trap cleanup EXIT

# Secrets with a random part, so that finding one in a log is no accident.
sasl_pw=sasl-pw-$RANDOM$RANDOM
broker_key_pw=broker-key-pw-$RANDOM$RANDOM
client_key_pw=client-key-pw-$RANDOM$RANDOM
keystore_pw=keystore-pw-$RANDOM$RANDOM

# The CA and the broker's certificate for 127.0.0.1. The key is PKCS#8
# encrypted with PBE-SHA1-3DES: Java 17's PEM loader (Kafka's
# ssl.keystore.type=PEM) cannot decrypt the PBES2 keys openssl makes by
# default ("Failed to load PEM SSL keystore").
(
        cd "$tmp"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt \
                -days 2 -subj /CN=kstreams-test-ca
        openssl req -newkey rsa:2048 -nodes -keyout broker.key \
                -out broker.csr -subj /CN=127.0.0.1
        echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >san.cnf
        openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key \
                -CAcreateserial -out broker.crt -days 2 -extfile san.cnf
        openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in broker.key \
                -out broker.p8 -passout "pass:$broker_key_pw"
        cat broker.p8 broker.crt >broker.pem
) >"$tmp/openssl.log" 2>&1 || { cat "$tmp/openssl.log" >&2; fail "openssl could not make the certificates"; }

env=$(KS_KAFKA_SASL_USERS="alice:$sasl_pw" KS_KAFKA_SSL_KEYSTORE="$tmp/broker.pem" \
        KS_KAFKA_SSL_KEY_PASSWORD="$broker_key_pw" bash "$KAFKA_SH" up "$name") ||
        skip_or_fail "the secured broker did not start (infra/kafka/kafka.sh up)"
secure=$(sed -n 's/^KS_BOOTSTRAP_SASL_SSL=//p' <<<"$env")
[[ -n $secure ]] || fail "kafka.sh printed no KS_BOOTSTRAP_SASL_SSL: $env"

tls=(security.protocol=SASL_SSL sasl.mechanism=PLAIN sasl.username=alice
        ssl.ca.location="$tmp/ca.crt")
kcat_secure() { kcat -b "$secure" "${tls[@]/#/-X}" -X "sasl.password=$sasl_pw" "$@"; }
app_conf() {
        local pw=$1 c
        for c in "${tls[@]}" "sasl.password=$pw" "ssl.key.password=$client_key_pw" \
                "ssl.keystore.password=$keystore_pw" debug=conf; do
                printf -- '--conf\n%s\n' "$c"
        done
}

in=sec-in-$$ out=sec-out-$$ app=sec-app-$$
for i in $(seq 0 49); do echo "k$((i % 10))|{\"id\":$i}"; done >"$tmp/in1"
kcat_secure -P -t "$in" -K '|' <"$tmp/in1" || fail "kcat could not produce over SASL_SSL"

# run_app STATE_DIR LOG PASSWORD [more ks_test_app args]: in the background.
run_app() {
        local state=$1 pw=$3
        log=$2
        shift 3
        mapfile -t conf < <(app_conf "$pw")
        KS_LOG_LEVEL=3 "$APP" --bootstrap "$secure" --app-id "$app" --input "$in" \
                --output "$out" --mode count --cache-bytes 0 --commit-ms 200 \
                --state-dir "$state" "${conf[@]}" "$@" >>"$log" 2>&1 &
        app_pid=$!
}

# The last count of key $1 in the output topic (int64 values).
last_count() {
        kcat_secure -C -t "$out" -o beginning -e -q -s value='>q' -f '%k %s\n' 2>/dev/null |
                awk -v k="$1" '$1 == k { c = $2 } END { print c + 0 }'
}
# At least $1 records in the output (fails at once when the app died).
counted() {
        kill -0 "$app_pid" 2>/dev/null || { tail -n 30 "$log" >&2; fail "ks_test_app exited"; }
        [[ $(kcat_secure -C -t "$out" -o beginning -e -q -f '%k\n' 2>/dev/null | wc -l) -ge $1 ]]
}

stop_app() {
        kill -TERM "$app_pid"
        local rc=0
        wait "$app_pid" || rc=$?
        app_pid=
        return "$rc"
}

# 1. The counts, over SASL_SSL only.
run_app "$tmp/state1" "$tmp/run1.log" "$sasl_pw"
wait_for 90 counted 50 || { tail -n 30 "$tmp/run1.log" >&2; fail "50 counts did not arrive over SASL_SSL"; }
assert_eq "$(last_count k3)" 5 "count of k3 after 50 records"
stop_app || { tail -n 30 "$tmp/run1.log" >&2; fail "the first run did not close cleanly"; }

# 2. An empty state directory: the store comes back from its changelog,
#    read by the restore consumer over SASL_SSL.
for i in $(seq 1 10); do echo "k3|{\"id\":$((100 + i))}"; done >"$tmp/in2"
kcat_secure -P -t "$in" -K '|' <"$tmp/in2" || fail "kcat could not produce the second batch"
run_app "$tmp/state2" "$tmp/run2.log" "$sasl_pw"
wait_for 90 counted 60 || { tail -n 30 "$tmp/run2.log" >&2; fail "the 10 new counts did not arrive"; }
assert_eq "$(last_count k3)" 15 "count of k3 after a restore and 10 more records"
stop_app || fail "the second run did not close cleanly"
grep -Eq 'restored=[1-9]' "$tmp/run2.log" || { grep 'exit:' "$tmp/run2.log" >&2; fail "the second run restored nothing"; }

# 3. A wrong password: start-up fails at once, saying why.
started=$SECONDS
run_app "$tmp/state3" "$tmp/run3.log" "wrong-$sasl_pw" --conf startup.timeout.ms=60000
rc=0
wait "$app_pid" || rc=$?
app_pid=
took=$((SECONDS - started))
((rc != 0)) || fail "a wrong password did not fail start-up"
grep -q 'start failed: .*AUTHENTICATION' "$tmp/run3.log" ||
        { tail -n 20 "$tmp/run3.log" >&2; fail "the start-up error does not say that authentication failed"; }
((took < 30)) || fail "a wrong password took ${took}s to fail (a timeout, not a clear error)"

# 4. A PostgreSQL password in the sink's connection string: kstreams-app
#    (--postgres, over the broker's plaintext listener) cannot connect (port
#    1), retries and logs why, with its stats lines, never with the password.
plain=$(sed -n 's/^KS_BOOTSTRAP=//p' <<<"$env")
pg_pw=pg-pw-$RANDOM$RANDOM
"$KS_BINARY_DIR/apps/kstreams-producer" --bootstrap-servers "$plain" \
        --topic "sec-events-$$" --partitions 1 --count 300 --time-step 1000 \
        --start-time "$(date -u -d '-20 min' +%Y-%m-%dT%H:%M:%S.000Z)" --quiet ||
        fail "kstreams-producer failed"
"$KS_BINARY_DIR/apps/kstreams-app" --job event-count --bootstrap-servers "$plain" \
        --application-id-prefix "sec-pg-$$" --input-topic "sec-events-$$" \
        --output-topic "sec-analytics-$$" --dlq-topic "sec-dlq-$$" \
        --commit-interval 500 --stats-interval 1s --state-dir "$tmp/state4" \
        --postgres "postgresql://kstreams:$pg_pw@127.0.0.1:1/kstreams?connect_timeout=2" \
        >"$tmp/run4.log" 2>&1 &
app_pid=$!
log=$tmp/run4.log
pg_refused() { kill -0 "$app_pid" 2>/dev/null; grep -q 'port 1 failed' "$tmp/run4.log"; }
wait_for 90 pg_refused || { tail -n 20 "$tmp/run4.log" >&2; fail "the PostgreSQL sink never reported its refused connection"; }
# Only its log matters here: a clean close would retry PostgreSQL for 30 s.
kill -KILL "$app_pid"
wait "$app_pid" || true
app_pid=

# 5. No secret in any log; librdkafka's configuration dump did run.
grep -q 'sasl.password' "$tmp"/run1.log || fail "debug=conf logged no configuration: the secret check would prove little"
for secret in "$sasl_pw" "$client_key_pw" "$keystore_pw" "$broker_key_pw" "$pg_pw"; do
        if grep -l -F -- "$secret" "$tmp"/run*.log; then
                fail "a secret appears in the logs above"
        fi
done
pass "counts over SASL_SSL, restore over SASL_SSL, wrong password failed in ${took}s: $(grep -m1 -o 'start failed: .*' "$tmp/run3.log" | cut -c1-160)"

#!/usr/bin/env bash
# A three-node KRaft cluster (infra/kafka/kafka.sh cluster-up) survives the
# loss of one broker: a topic with replication factor 3 and
# min.insync.replicas=2 still takes acks=all writes and serves reads, and
# the broker rejoins the ISR when it comes back. Starts its own cluster and
# stops it whatever happens.
set -euo pipefail
source "$(dirname "$0")/lib_system.sh"

require_tool kcat
require_tool java
compgen -G "$KS_SOURCE_DIR/infra/kafka/lib/kafka_2.1?-*.jar" >/dev/null ||
        skip_or_fail "no Kafka jars in infra/kafka/lib (bash infra/deps.sh ensure-services)"

name="systest-$$"
cleanup() {
        bash "$KAFKA_SH" cluster-down "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT

line=$(bash "$KAFKA_SH" cluster-up "$name") || fail "kafka.sh cluster-up failed"
[[ $line == KS_BOOTSTRAP=*,*,* ]] || fail "cluster-up printed '$line', not three addresses"
bootstrap=${line#KS_BOOTSTRAP=}

brokers=$(kcat -b "$bootstrap" -L -m 10 | grep -c '^  broker [0-9]* at ' || true)
assert_eq "$brokers" 3 "brokers in the cluster's metadata"

topic="rf3-$$"
topics --bootstrap-server "$bootstrap" --create --topic "$topic" --partitions 3 \
        --replication-factor 3 --config min.insync.replicas=2 >/dev/null ||
        fail "creating $topic with replication factor 3 failed"

# isr_sizes: the ISR size of each partition, e.g. "3 3 3".
isr_sizes() {
        topics --bootstrap-server "$bootstrap" --describe --topic "$topic" |
                sed -n 's/.*Isr: \([0-9,]*\).*/\1/p' | awk -F, '{printf "%s ", NF}'
}
produce() { # FROM COUNT
        seq "$1" $(($1 + $2 - 1)) | sed 's/^/v/' |
                kcat -b "$bootstrap" -P -t "$topic" -X acks=all -m 20 -q
}
count() {
        kcat -b "$bootstrap" -C -t "$topic" -o beginning -e -q -m 20 2>/dev/null | wc -l
}

assert_eq "$(isr_sizes)" "3 3 3 " "ISR sizes with three brokers"
produce 1 100 || fail "acks=all produce with three brokers failed"
assert_eq "$(count)" 100 "records read with three brokers"

bash "$KAFKA_SH" stop-broker 2 "$name" || fail "stop-broker 2 failed"
# A controlled shutdown takes the broker out of every ISR at once.
isr_two() { [[ $(isr_sizes) == "2 2 2 " ]]; }
wait_for 30 isr_two || fail "ISRs did not shrink to 2 after stopping broker 2: $(isr_sizes)"
produce 101 100 || fail "acks=all produce with broker 2 down failed (min.insync.replicas=2 of 3)"
assert_eq "$(count)" 200 "records read with broker 2 down"

bash "$KAFKA_SH" start-broker 2 "$name" || fail "start-broker 2 failed"
isr_full() { [[ $(isr_sizes) == "3 3 3 " ]]; }
wait_for 60 isr_full || fail "broker 2 did not rejoin every ISR in 60s: $(isr_sizes)"
produce 201 50 || fail "acks=all produce after broker 2 came back failed"
assert_eq "$(count)" 250 "records read after broker 2 came back"

node_pids=$(cat "$KS_RUN_ROOT/kafka-cluster-$name"/node*/pid)
bash "$KAFKA_SH" cluster-down "$name" || fail "cluster-down failed"
for p in $node_pids; do
        ! kill -0 "$p" 2>/dev/null || fail "cluster-down left Kafka process $p running"
done
[[ ! -e $KS_RUN_ROOT/kafka-cluster-$name ]] || fail "cluster-down left its directory behind"
pass "3 brokers, RF 3, one broker down and back, 250 records"

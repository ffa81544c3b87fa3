#!/usr/bin/env bash
# Runs real Apache Kafka brokers (KRaft, no ZooKeeper) from the jars that
# infra/kafka/pom.xml resolves into infra/kafka/lib/. See infra/README.md.
#
#   kafka.sh up [NAME]              one combined broker+controller; prints KS_BOOTSTRAP=...
#   kafka.sh down [NAME]            stop it and delete its data
#   kafka.sh status [NAME]          exit 0 and print KS_BOOTSTRAP if it runs, 3 if not
#   kafka.sh cluster-up [NAME]      three combined broker+controller nodes
#   kafka.sh cluster-down [NAME]
#   kafka.sh stop-broker N [NAME]   stop node N (1..3) of a cluster, keep its data
#   kafka.sh start-broker N [NAME]  start it again
#   kafka.sh run-class CLASS [ARGS] run a Kafka tool class with the jars, quiet logging
#   kafka.sh topics [ARGS]          shorthand for run-class org.apache.kafka.tools.TopicCommand
#
# Environment:
#   KS_RUN_DIR              where instances live (default: <repo>/.run)
#   KS_KAFKA_LIB            the jars (default: infra/kafka/lib)
#   KS_KAFKA_HEAP           JVM heap options (default: -Xms128m -Xmx512m)
#   KS_KAFKA_START_TIMEOUT  seconds to wait for "Kafka Server started" (default 120)
#   KS_KAFKA_EXTRA_PROPERTIES  a file appended to every node's server.properties
#   KS_KAFKA_SASL_USERS     "user:password,...": `up` adds a SASL_SSL listener
#                           (SASL/PLAIN over TLS) with these accounts, and
#                           prints KS_BOOTSTRAP_SASL_SSL=host:port as well
#   KS_KAFKA_SSL_KEYSTORE   its TLS identity: a PEM file with the broker's
#                           PKCS#8 private key and certificate (required
#                           with KS_KAFKA_SASL_USERS; make it with openssl)
#   KS_KAFKA_SSL_KEY_PASSWORD  the password of that key, if encrypted
#   JAVA_HOME               else `java` from PATH
#
# Only KS_BOOTSTRAP=... goes to stdout; progress and errors go to stderr.
set -euo pipefail

KS_SCRIPT_NAME=kafka.sh
# shellcheck source=../common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
SCRIPT_DIR="$KS_INFRA_DIR/kafka"
LIB_DIR=${KS_KAFKA_LIB:-$SCRIPT_DIR/lib}
RUN_DIR=$KS_RUN_ROOT
HEAP_OPTS=${KS_KAFKA_HEAP:--Xms128m -Xmx512m}
START_TIMEOUT=${KS_KAFKA_START_TIMEOUT:-120}
STOP_TIMEOUT=30

usage() {
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
        exit "${1:-2}"
}

java_bin() {
        if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
                echo "$JAVA_HOME/bin/java"
        elif command -v java >/dev/null 2>&1; then
                command -v java
        else
                die "java not found (install default-jdk-headless: bash infra/deps.sh install)"
        fi
}

# The Kafka version in lib/, from the kafka_2.13 jar's name.
kafka_version() {
        local jar
        jar=$(ls "$LIB_DIR"/kafka_2.1[0-9]-*.jar 2>/dev/null | head -n1 || true)
        [[ -n $jar ]] || die "no Kafka jars in $LIB_DIR (run: bash infra/deps.sh ensure-services)"
        jar=${jar##*/kafka_2.1?-}
        echo "${jar%.jar}"
}

kafka_major() { local v; v=$(kafka_version); echo "${v%%.*}"; }

# Kafka 4 logs through Log4j 2, Kafka 3.9 through reload4j (Log4j 1 API).
write_log_config() {
        local dir=$1 level=$2
        if (( $(kafka_major) >= 4 )); then
                cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.target = SYSTEM_ERR
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $level
rootLogger.appenderRef.out.ref = STDOUT
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
EOF
                echo "-Dlog4j2.configurationFile=file:$dir/log4j2.properties"
        else
                cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=$level, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
EOF
                echo "-Dlog4j.configuration=file:$dir/log4j.properties"
        fi
}

# run-class: a Kafka tool with the jars on the class path and quiet logging.
run_class() {
        [[ $# -ge 1 ]] || die "run-class needs a class name"
        kafka_version >/dev/null
        local cfgdir logopt
        cfgdir=$(mktemp -d "${TMPDIR:-/tmp}/ks-kafka-tool.XXXXXX")
        logopt=$(write_log_config "$cfgdir" WARN)
        local rc=0
        "$(java_bin)" -Xmx256m -XX:TieredStopAtLevel=1 -Xshare:auto \
                -Djava.awt.headless=true "$logopt" \
                -cp "$LIB_DIR/*" "$@" || rc=$?
        rm -rf "$cfgdir"
        return "$rc"
}

random_cluster_id() {
        # Kafka's Uuid: 16 random bytes, URL-safe base64 without padding,
        # never starting with '-' (as Uuid.randomUuid() ensures).
        local id
        while :; do
                id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
                [[ $id != -* ]] && { echo "$id"; return; }
        done
}

secured() { [[ -n ${KS_KAFKA_SASL_USERS:-} ]]; }

# The SASL_SSL listener's settings: SASL/PLAIN accounts from
# KS_KAFKA_SASL_USERS, the TLS identity from KS_KAFKA_SSL_KEYSTORE (PEM).
# Brokers and the controller keep talking PLAINTEXT among themselves.
write_secure_props() {
        local dir=$1 jaas users u
        [[ -r ${KS_KAFKA_SSL_KEYSTORE:-} ]] ||
                die "KS_KAFKA_SASL_USERS needs KS_KAFKA_SSL_KEYSTORE, a readable PEM file (key + certificate)"
        jaas='org.apache.kafka.common.security.plain.PlainLoginModule required'
        IFS=, read -ra users <<<"$KS_KAFKA_SASL_USERS"
        for u in "${users[@]}"; do
                [[ $u == *:* && ${u%%:*} =~ ^[A-Za-z0-9_.-]+$ && ${u#*:} != *[\"\;]* ]] ||
                        die "KS_KAFKA_SASL_USERS: '${u%%:*}:...' is not user:password (no quotes or ; in passwords)"
                jaas+=" user_${u%%:*}=\"${u#*:}\""
        done
        cat >>"$dir/server.properties" <<EOF
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=$jaas;
ssl.keystore.type=PEM
ssl.keystore.location=$KS_KAFKA_SSL_KEYSTORE
EOF
        [[ -z ${KS_KAFKA_SSL_KEY_PASSWORD:-} ]] ||
                echo "ssl.key.password=$KS_KAFKA_SSL_KEY_PASSWORD" >>"$dir/server.properties"
        chmod 600 "$dir/server.properties"
}

# write_node_props DIR NODE_ID BROKER_PORT CONTROLLER_PORT VOTERS RF MIN_ISR [SASL_SSL_PORT]
write_node_props() {
        local dir=$1 id=$2 bport=$3 cport=$4 voters=$5 rf=$6 isr=$7 sport=${8:-}
        local listeners="PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport"
        local advertised="PLAINTEXT://127.0.0.1:$bport"
        local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        if [[ -n $sport ]]; then
                listeners+=",SASL_SSL://127.0.0.1:$sport"
                advertised+=",SASL_SSL://127.0.0.1:$sport"
                protocols+=",SASL_SSL:SASL_SSL"
        fi
        cat >"$dir/server.properties" <<EOF
# Written by infra/kafka/kafka.sh: a combined KRaft broker+controller for tests.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$dir/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
# Small machines: the cleaner's dedupe buffer defaults to 128 MiB of heap.
log.cleaner.dedupe.buffer.size=8388608
log.cleaner.threads=1
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.segment.bytes=67108864
log.retention.check.interval.ms=60000
EOF
        [[ -z $sport ]] || write_secure_props "$dir"
        if [[ -n ${KS_KAFKA_EXTRA_PROPERTIES:-} ]]; then
                [[ -r $KS_KAFKA_EXTRA_PROPERTIES ]] ||
                        die "KS_KAFKA_EXTRA_PROPERTIES=$KS_KAFKA_EXTRA_PROPERTIES is not readable"
                { echo "# from $KS_KAFKA_EXTRA_PROPERTIES"; cat "$KS_KAFKA_EXTRA_PROPERTIES"; } \
                        >>"$dir/server.properties"
        fi
}

# format_node DIR CLUSTER_ID: kafka-storage.sh format.
format_node() {
        local dir=$1 cid=$2 logopt
        logopt=$(write_log_config "$dir" INFO)
        if ! "$(java_bin)" -Xmx256m -XX:TieredStopAtLevel=1 "$logopt" -cp "$LIB_DIR/*" \
                kafka.tools.StorageTool format -t "$cid" -c "$dir/server.properties" \
                >"$dir/format.log" 2>&1; then
                grep -v '^[[:space:]]*at ' "$dir/format.log" | tail -n 20 >&2
                log "kafka.tools.StorageTool format failed for $dir"
                return 1
        fi
}

# start_node DIR: java kafka.Kafka in the background, detached from our
# session and our stdout (a ctest fixture must not wait on the broker).
start_node() {
        local dir=$1 logopt
        logopt=$(write_log_config "$dir" INFO)
        : >"$dir/server.log"
        # shellcheck disable=SC2086
        setsid "$(java_bin)" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
                -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
                -Xshare:auto \
                "$logopt" -Dkafka.logs.dir="$dir/logs" \
                -cp "$LIB_DIR/*" kafka.Kafka "$dir/server.properties" \
                </dev/null >>"$dir/server.log" 2>&1 &
        echo $! >"$dir/pid"
}

# wait_started DIR...: until every node logged "Kafka Server started".
# Returns 1 on timeout or death (log tail printed), 2 when a port was taken.
wait_started() {
        local deadline=$((SECONDS + START_TIMEOUT)) dir pending
        while :; do
                pending=0
                for dir in "$@"; do
                        grep -q 'Kafka Server started' "$dir/server.log" 2>/dev/null && continue
                        if ! pid_alive "$(cat "$dir/pid" 2>/dev/null)"; then
                                if grep -q 'Address already in use' "$dir/server.log"; then
                                        return 2
                                fi
                                log "broker in $dir exited during startup; its first errors and last lines:"
                                grep -m 5 -A 3 -E "^\[.*\] (ERROR|FATAL)" "$dir/server.log" | cut -c1-400 >&2 || true
                                tail -n 40 "$dir/server.log" >&2
                                return 1
                        fi
                        pending=1
                done
                ((pending)) || return 0
                if ((SECONDS >= deadline)); then
                        for dir in "$@"; do
                                grep -q 'Kafka Server started' "$dir/server.log" && continue
                                log "broker in $dir not started after ${START_TIMEOUT}s; last lines of its log:"
                                tail -n 40 "$dir/server.log" >&2
                        done
                        return 1
                fi
                sleep 0.3
        done
}

# stop_pid PID: SIGTERM (controlled shutdown), then SIGKILL after a timeout.
stop_pid() {
        local pid=$1 i
        pid_alive "$pid" || return 0
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
                pid_alive "$pid" || return 0
                sleep 0.1
        done
        log "pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
                pid_alive "$pid" || return 0
                sleep 0.1
        done
}

stop_dir_nodes() {
        local dir=$1 pidfile pids=() p
        # Stop every node at once: a KRaft quorum that loses its majority
        # one node at a time makes the last ones wait for the timeout.
        while IFS= read -r pidfile; do
                p=$(cat "$pidfile" 2>/dev/null || true)
                if pid_alive "$p"; then
                        kill -TERM "$p" 2>/dev/null || true
                        pids+=("$p")
                fi
        done < <(find "$dir" -maxdepth 2 -name pid)
        for p in "${pids[@]}"; do stop_pid "$p"; done
}

instance_alive() {
        local dir=$1 pidfile
        [[ -f $dir/env ]] || return 1
        while IFS= read -r pidfile; do
                pid_alive "$(cat "$pidfile" 2>/dev/null)" && return 0
        done < <(find "$dir" -maxdepth 2 -name pid)
        return 1
}

cmd_up() {
        local name=${1:-default}
        check_name "$name"
        local dir="$RUN_DIR/kafka-$name" attempt rc bport cport sport="" started=$SECONDS
        if instance_alive "$dir"; then
                log "'$name' is already running ($dir)"
                cat "$dir/env"
                return 0
        fi
        kafka_version >/dev/null
        for attempt in 1 2 3; do
                rm -rf "$dir"
                mkdir -p "$dir/data" "$dir/logs"
                free_port bport
                free_port cport
                if secured; then free_port sport; fi
                write_node_props "$dir" 1 "$bport" "$cport" "1@127.0.0.1:$cport" 1 1 "$sport"
                format_node "$dir" "$(random_cluster_id)" || {
                        rm -rf "$dir"
                        die "Kafka '$name' did not start"
                }
                log "starting Kafka $(kafka_version) '$name' on 127.0.0.1:$bport${sport:+ (SASL_SSL on 127.0.0.1:$sport)} (dir $dir)"
                start_node "$dir"
                rc=0
                wait_started "$dir" || rc=$?
                if ((rc == 0)); then
                        echo "KS_BOOTSTRAP=127.0.0.1:$bport" >"$dir/env"
                        [[ -z $sport ]] || echo "KS_BOOTSTRAP_SASL_SSL=127.0.0.1:$sport" >>"$dir/env"
                        log "started in $((SECONDS - started))s, pid $(cat "$dir/pid")"
                        cat "$dir/env"
                        return 0
                fi
                stop_dir_nodes "$dir"
                ((rc == 2)) || break
                log "a port was taken meanwhile, retrying with others"
        done
        rm -rf "$dir"
        die "Kafka '$name' did not start"
}

cmd_down() {
        local name=${1:-default}
        check_name "$name"
        local dir="$RUN_DIR/kafka-$name"
        if [[ ! -d $dir ]]; then
                log "'$name' is not running (no $dir)"
                return 0
        fi
        stop_dir_nodes "$dir"
        rm -rf "$dir"
        log "stopped '$name'"
}

cmd_status() {
        local name=${1:-default} prefix dir
        check_name "$name"
        for prefix in kafka kafka-cluster; do
                dir="$RUN_DIR/$prefix-$name"
                if instance_alive "$dir"; then
                        cat "$dir/env"
                        local pidfile
                        while IFS= read -r pidfile; do
                                local p; p=$(cat "$pidfile")
                                if pid_alive "$p"; then
                                        log "$(basename "$(dirname "$pidfile")"): pid $p, RSS $(awk '/VmRSS/ {print int($2/1024)}' "/proc/$p/status") MiB"
                                else
                                        log "$(basename "$(dirname "$pidfile")"): stopped"
                                fi
                        done < <(find "$dir" -maxdepth 2 -name pid | sort)
                        return 0
                fi
        done
        log "'$name' is not running"
        return 3
}

CLUSTER_SIZE=3

cmd_cluster_up() {
        local name=${1:-cluster}
        check_name "$name"
        local dir="$RUN_DIR/kafka-cluster-$name" attempt rc i bport cport started=$SECONDS
        if instance_alive "$dir"; then
                log "cluster '$name' is already running ($dir)"
                cat "$dir/env"
                return 0
        fi
        kafka_version >/dev/null
        for attempt in 1 2 3; do
                rm -rf "$dir"
                local bports=() cports=() fpids=() voters="" bootstrap="" cid nodes=()
                for ((i = 1; i <= CLUSTER_SIZE; i++)); do
                        free_port bport
                        free_port cport
                        bports[i]=$bport
                        cports[i]=$cport
                        voters+="${voters:+,}$i@127.0.0.1:${cports[i]}"
                        bootstrap+="${bootstrap:+,}127.0.0.1:${bports[i]}"
                done
                cid=$(random_cluster_id)
                rc=0
                for ((i = 1; i <= CLUSTER_SIZE; i++)); do
                        nodes[i]="$dir/node$i"
                        mkdir -p "${nodes[i]}/data" "${nodes[i]}/logs"
                        write_node_props "${nodes[i]}" "$i" "${bports[i]}" "${cports[i]}" \
                                "$voters" 3 2
                        format_node "${nodes[i]}" "$cid" &
                        fpids[i]=$!
                done
                for ((i = 1; i <= CLUSTER_SIZE; i++)); do
                        wait "${fpids[i]}" || rc=1
                done
                if ((rc)); then
                        rm -rf "$dir"
                        die "formatting the nodes of cluster '$name' failed"
                fi
                log "starting a $CLUSTER_SIZE-node Kafka $(kafka_version) cluster '$name' on $bootstrap"
                for ((i = 1; i <= CLUSTER_SIZE; i++)); do start_node "${nodes[i]}"; done
                rc=0
                wait_started "${nodes[@]}" || rc=$?
                if ((rc == 0)); then
                        echo "KS_BOOTSTRAP=$bootstrap" >"$dir/env"
                        log "cluster started in $((SECONDS - started))s"
                        cat "$dir/env"
                        return 0
                fi
                stop_dir_nodes "$dir"
                ((rc == 2)) || break
                log "a port was taken meanwhile, retrying with others"
        done
        rm -rf "$dir"
        die "Kafka cluster '$name' did not start"
}

cmd_cluster_down() {
        local name=${1:-cluster}
        check_name "$name"
        local dir="$RUN_DIR/kafka-cluster-$name"
        if [[ ! -d $dir ]]; then
                log "cluster '$name' is not running (no $dir)"
                return 0
        fi
        stop_dir_nodes "$dir"
        rm -rf "$dir"
        log "stopped cluster '$name'"
}

cluster_node_dir() {
        local n=$1 name=$2
        [[ $n =~ ^[1-9]$ ]] && ((n <= CLUSTER_SIZE)) || die "broker number must be 1..$CLUSTER_SIZE, got '$n'"
        check_name "$name"
        local dir="$RUN_DIR/kafka-cluster-$name/node$n"
        [[ -f $dir/server.properties ]] || die "no cluster '$name' (no $dir; run cluster-up first)"
        echo "$dir"
}

# alive_nodes CLUSTER_DIR: how many of its nodes run.
alive_nodes() {
        local n=0 i
        for ((i = 1; i <= CLUSTER_SIZE; i++)); do
                pid_alive "$(cat "$1/node$i/pid" 2>/dev/null || true)" && n=$((n + 1))
        done
        echo "$n"
}

QUORUM=$((CLUSTER_SIZE / 2 + 1))

cmd_stop_broker() {
        [[ $# -ge 1 ]] || die "stop-broker needs a broker number"
        local name=${2:-cluster} dir pid others
        dir=$(cluster_node_dir "$1" "$name")
        pid=$(cat "$dir/pid" 2>/dev/null || true)
        if ! pid_alive "$pid"; then
                log "broker $1 of cluster '$name' is not running"
                return 0
        fi
        others=$(($(alive_nodes "$(dirname "$dir")") - 1))
        # A node whose quorum is gone already cannot finish its controlled
        # shutdown (it waits for the metadata log): do not wait 30 s for it.
        if ((others + 1 < QUORUM)); then
                log "the controller quorum is lost already: SIGKILL after 5s if needed"
                STOP_TIMEOUT=5
        fi
        stop_pid "$pid"
        log "stopped broker $1 of cluster '$name'"
}

# Starts node N. A node becomes ready only once a majority of the
# controllers runs: with fewer nodes up, it is started and not waited for
# (`start-broker 1; start-broker 2` after stopping all three works: the
# second call waits for both).
cmd_start_broker() {
        [[ $# -ge 1 ]] || die "start-broker needs a broker number"
        local name=${2:-cluster} dir cdir started=$SECONDS alive i nodes=()
        dir=$(cluster_node_dir "$1" "$name")
        cdir=$(dirname "$dir")
        if pid_alive "$(cat "$dir/pid" 2>/dev/null || true)"; then
                log "broker $1 is already running"
                return 0
        fi
        start_node "$dir"
        alive=$(alive_nodes "$cdir")
        if ((alive < QUORUM)); then
                log "started broker $1 of cluster '$name'; $alive of $CLUSTER_SIZE nodes run, below the quorum of $QUORUM: it becomes ready when another node starts (not waiting)"
                return 0
        fi
        for ((i = 1; i <= CLUSTER_SIZE; i++)); do
                pid_alive "$(cat "$cdir/node$i/pid" 2>/dev/null || true)" && nodes+=("$cdir/node$i")
        done
        wait_started "${nodes[@]}" || die "broker $1 of cluster '$name' did not start again"
        log "started broker $1 again, $alive nodes ready, in $((SECONDS - started))s"
}

main() {
        [[ $# -ge 1 ]] || usage 2
        local cmd=$1
        shift
        case $cmd in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status "$@" ;;
        cluster-up) cmd_cluster_up "$@" ;;
        cluster-down) cmd_cluster_down "$@" ;;
        stop-broker) cmd_stop_broker "$@" ;;
        start-broker) cmd_start_broker "$@" ;;
        run-class) run_class "$@" ;;
        topics) run_class org.apache.kafka.tools.TopicCommand "$@" ;;
        -h | --help | help) usage 0 ;;
        *) log "unknown command '$cmd'"; usage 2 ;;
        esac
}

main "$@"

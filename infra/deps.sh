#!/usr/bin/env bash
# Installs and checks what kstreams needs on Debian 12 (bookworm).
#
#   deps.sh install          apt-get install every package below, then resolve
#                            the Kafka jars with Maven (root)
#   deps.sh ensure           install missing packages when root; else name
#                            them with the command to install them and exit 1
#   deps.sh ensure-services  Kafka jars in infra/kafka/lib (mvn if needed),
#                            java and PostgreSQL's server binaries present
#   deps.sh ensure-format    clang-format present (installed when root)
#   deps.sh kafka-jars       resolve the Kafka jars again, whatever is there
#   deps.sh packages         print the package list
#
# Environment:
#   KS_KAFKA_PROFILE   Maven profile of infra/kafka/pom.xml: kafka-4.1
#                      (default) or kafka-3.9
set -euo pipefail

KS_SCRIPT_NAME=deps.sh
# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
KAFKA_DIR="$KS_INFRA_DIR/kafka"
KAFKA_LIB="$KAFKA_DIR/lib"
KAFKA_PROFILE=${KS_KAFKA_PROFILE:-kafka-4.1}

# What each is for: build (build-essential g++ cmake pkg-config), the
# library's dependencies (librdkafka LMDB jansson libpq libcurl simdjson
# libmicrohttpd),
# tests (check subunit kcat), format (clang-format), real services
# (PostgreSQL server and client; a JDK and Maven for the Kafka jars), tools
# (lmdb-utils: mdb_stat/mdb_dump on state stores; jackson for Java helpers;
# prometheus: promtool and the server, for the alert rules and the metrics
# system test), fuzzing (clang and its runtime libraries, libFuzzer: make
# fuzz).
PACKAGES=(
        build-essential g++ cmake pkg-config
        librdkafka-dev liblmdb-dev libjansson-dev libpq-dev
        libcurl4-openssl-dev libsimdjson-dev libmicrohttpd-dev
        check libsubunit-dev kcat
        clang-format
        postgresql postgresql-client
        default-jdk-headless maven libjackson2-databind-java
        lmdb-utils prometheus
        clang libclang-rt-14-dev
        python3
)

usage() {
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
        exit "${1:-2}"
}

# Prints the packages of "$@" that are not installed.
missing_packages() {
        local p status
        for p in "$@"; do
                status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
                [[ $status == installed ]] || echo "$p"
        done
}

apt_install() {
        ((EUID == 0)) || die "installing packages needs root (run: sudo apt-get install -y $*)"
        export DEBIAN_FRONTEND=noninteractive
        log "apt-get update"
        apt-get update -q >&2 || die "apt-get update failed"
        log "apt-get install $*"
        apt-get install -y -q --no-install-recommends "$@" >&2 ||
                die "apt-get install failed for: $*"
}

# ensure_packages PKG...: install what is missing when root, else explain.
ensure_packages() {
        local missing
        mapfile -t missing < <(missing_packages "$@")
        ((${#missing[@]} == 0)) && return 0
        if ((EUID == 0)); then
                log "missing Debian packages: ${missing[*]}"
                apt_install "${missing[@]}"
                mapfile -t missing < <(missing_packages "${missing[@]}")
                ((${#missing[@]} == 0)) || die "still missing after apt-get install: ${missing[*]}"
                return 0
        fi
        echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
        echo "deps.sh: install them with:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        echo "deps.sh: (or: sudo bash infra/deps.sh install)" >&2
        exit 1
}

# A stamp in lib/ says which pom and profile the jars came from, so that
# editing the pom or switching KS_KAFKA_PROFILE resolves them again.
kafka_stamp() {
        echo "profile=$KAFKA_PROFILE pom=$(sha256sum "$KAFKA_DIR/pom.xml" | cut -d' ' -f1)"
}

kafka_jars_current() {
        [[ -f $KAFKA_LIB/.resolved ]] &&
                [[ $(cat "$KAFKA_LIB/.resolved") == "$(kafka_stamp)" ]] &&
                ls "$KAFKA_LIB"/kafka_2.1?-*.jar >/dev/null 2>&1
}

resolve_kafka_jars() {
        command -v mvn >/dev/null 2>&1 || die "mvn not found (install maven: bash infra/deps.sh install)"
        local started=$SECONDS
        log "resolving Kafka jars with Maven (profile $KAFKA_PROFILE) into $KAFKA_LIB"
        # Empty lib/ first: jars of another Kafka version must not linger.
        rm -rf "$KAFKA_LIB"
        if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_DIR/pom.xml" -P "$KAFKA_PROFILE" package >&2; then
                rm -rf "$KAFKA_LIB"
                die "mvn could not resolve the Kafka jars (see above; is Maven Central reachable?)"
        fi
        kafka_stamp >"$KAFKA_LIB/.resolved"
        log "Kafka jars resolved in $((SECONDS - started))s: $(ls "$KAFKA_LIB"/*.jar | wc -l) jars, $(du -sh "$KAFKA_LIB" | cut -f1)"
}

cmd_install() {
        apt_install "${PACKAGES[@]}"
        resolve_kafka_jars
}

cmd_ensure() {
        ensure_packages "${PACKAGES[@]}"
}

cmd_ensure_services() {
        ensure_packages default-jdk-headless maven postgresql postgresql-client kcat
        command -v java >/dev/null 2>&1 || die "java not on PATH although default-jdk-headless is installed"
        compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
                die "no /usr/lib/postgresql/*/bin/initdb although postgresql is installed"
        if kafka_jars_current; then
                return 0
        fi
        resolve_kafka_jars
}

cmd_ensure_format() {
        ensure_packages clang-format
}

main() {
        [[ $# -ge 1 ]] || usage 2
        local cmd=$1
        shift
        [[ $# -eq 0 ]] || die "'$cmd' takes no arguments"
        case $cmd in
        install) cmd_install ;;
        ensure) cmd_ensure ;;
        ensure-services) cmd_ensure_services ;;
        ensure-format) cmd_ensure_format ;;
        kafka-jars) resolve_kafka_jars ;;
        packages) printf '%s\n' "${PACKAGES[@]}" ;;
        -h | --help | help) usage 0 ;;
        *) log "unknown command '$cmd'"; usage 2 ;;
        esac
}

main "$@"

#!/usr/bin/env bash
# Starts and stops the real services the system tests share: one Kafka broker
# (infra/kafka/kafka.sh) and one PostgreSQL (infra/postgres/pg.sh). ctest runs
# this as the ks_services fixture (tests/CMakeLists.txt).
#
#   services.sh up FILE     start them and write FILE:
#                             KS_BOOTSTRAP=host:port
#                             KS_PG_DSN=postgresql://...
#                           plus KS_SERVICES_* lines that `down` needs
#   services.sh down FILE   stop what `up` started, remove FILE
#
# KS_BOOTSTRAP / KS_PG_DSN set in the environment: that service is used as
# it is and nothing is started for it (the schema is still applied to
# KS_PG_DSN).
#
# A service that cannot start: with CI=true, `up` fails (system tests must
# never be skipped in CI); otherwise it says why, leaves the service out of
# FILE and exits 0, and the tests that need it skip.
set -euo pipefail

KS_SCRIPT_NAME=services.sh
# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

usage() {
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
        exit "${1:-2}"
}

in_ci() { [[ ${CI:-} == true ]]; }

# Instance names derive from FILE, so two build trees do not share services.
instance_name() {
        local file=$1
        echo "svc-$(realpath -m "$file" | sha256sum | cut -c1-10)"
}

# read_var FILE NAME: the value of NAME=... in FILE, or nothing.
read_var() {
        local line
        [[ -f $1 ]] || return 0
        line=$(grep -m1 "^$2=" "$1" || true)
        echo "${line#*=}"
}

cmd_up() {
        local file=$1 name out failures=()
        name=$(instance_name "$file")
        mkdir -p "$(dirname "$file")"
        if [[ -f $file ]]; then
                log "$file exists: stopping what it names first (a previous run did not clean up)"
                cmd_down "$file" || true
        fi
        local tmp="$file.tmp.$$"
        {
                echo "# written by infra/services.sh up; removed by services.sh down"
                echo "KS_SERVICES_RUN_DIR=$KS_RUN_ROOT"
        } >"$tmp"

        if [[ -n ${KS_BOOTSTRAP:-} ]]; then
                log "KS_BOOTSTRAP is set: using $KS_BOOTSTRAP, starting no broker"
                echo "KS_BOOTSTRAP=$KS_BOOTSTRAP" >>"$tmp"
        elif ! out=$(bash "$KS_INFRA_DIR/deps.sh" ensure-services >&2 &&
                bash "$KS_INFRA_DIR/kafka/kafka.sh" up "$name"); then
                failures+=("Kafka (infra/kafka/kafka.sh up failed, see above)")
        else
                echo "$out" >>"$tmp"
                echo "KS_SERVICES_KAFKA_NAME=$name" >>"$tmp"
        fi

        # pg.sh itself uses KS_PG_DSN when it is set (applies the schema).
        if out=$(bash "$KS_INFRA_DIR/postgres/pg.sh" up "$name"); then
                echo "$out" >>"$tmp"
                [[ -n ${KS_PG_DSN:-} ]] || echo "KS_SERVICES_PG_NAME=$name" >>"$tmp"
        else
                failures+=("PostgreSQL (infra/postgres/pg.sh up failed, see above)")
        fi

        mv "$tmp" "$file"
        log "wrote $file:"
        grep -v '^#' "$file" | sed 's/^/    /' >&2
        if ((${#failures[@]})); then
                local f
                for f in "${failures[@]}"; do log "not available: $f"; done
                if in_ci; then
                        die "CI=true and a service did not start: system tests would not run"
                fi
                log "the system tests that need it will be skipped"
        fi
        return 0
}

cmd_down() {
        local file=$1 rc=0 kname pname rundir
        if [[ ! -f $file ]]; then
                log "no $file: nothing to stop"
                return 0
        fi
        kname=$(read_var "$file" KS_SERVICES_KAFKA_NAME)
        pname=$(read_var "$file" KS_SERVICES_PG_NAME)
        rundir=$(read_var "$file" KS_SERVICES_RUN_DIR)
        if [[ -n $kname ]]; then
                KS_RUN_DIR=${rundir:-$KS_RUN_ROOT} bash "$KS_INFRA_DIR/kafka/kafka.sh" down "$kname" || rc=1
        fi
        if [[ -n $pname ]]; then
                # An inherited KS_PG_DSN would make pg.sh stop nothing.
                env -u KS_PG_DSN KS_RUN_DIR="${rundir:-$KS_RUN_ROOT}" \
                        bash "$KS_INFRA_DIR/postgres/pg.sh" down "$pname" || rc=1
        fi
        rm -f "$file"
        return "$rc"
}

main() {
        case ${1:-} in
        -h | --help | help) usage 0 ;;
        up | down) ;;
        *) usage 2 ;;
        esac
        [[ $# -eq 2 && -n $2 ]] || { log "$1 needs exactly one FILE argument"; usage 2; }
        case $1 in
        up) cmd_up "$2" ;;
        down) cmd_down "$2" ;;
        esac
}

main "$@"

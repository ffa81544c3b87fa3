# shellcheck shell=bash disable=SC2034
# Helpers sourced by tests/system/test_*.sh (not a test itself: the name
# does not match test_*.sh). ctest sets KS_SERVICES_FILE, KS_BINARY_DIR and
# KS_SOURCE_DIR; run by hand, the paths fall back to this checkout and
# ./build, and services come from KS_BOOTSTRAP / KS_PG_DSN.

KS_SOURCE_DIR=${KS_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
KS_BINARY_DIR=${KS_BINARY_DIR:-$KS_SOURCE_DIR/build}
KS_SCRIPT_NAME=${KS_SCRIPT_NAME:-$(basename "$0" .sh)}
# shellcheck source=../../infra/common.sh
source "$KS_SOURCE_DIR/infra/common.sh"
KAFKA_SH="$KS_SOURCE_DIR/infra/kafka/kafka.sh"
PG_SH="$KS_SOURCE_DIR/infra/postgres/pg.sh"

fail() {
        echo "FAIL: $KS_SCRIPT_NAME: $*" >&2
        exit 1
}

pass() {
        echo "PASS: $KS_SCRIPT_NAME${1:+: $1}"
        exit 0
}

# A missing service or tool: a failure when CI=true, a skip otherwise.
skip_or_fail() {
        if [[ ${CI:-} == true ]]; then
                fail "$* (CI=true: system tests must not skip)"
        fi
        echo "SKIP: $KS_SCRIPT_NAME: $*" >&2
        exit 77 # ctest reports it as skipped (SKIP_RETURN_CODE)
}

# ks_service NAME: the environment's NAME, else NAME=... in KS_SERVICES_FILE.
ks_service() {
        local name=$1 line
        if [[ -n ${!name:-} ]]; then
                echo "${!name}"
                return 0
        fi
        [[ -n ${KS_SERVICES_FILE:-} && -f $KS_SERVICES_FILE ]] || return 0
        line=$(grep -m1 "^$name=" "$KS_SERVICES_FILE" || true)
        echo "${line#*=}"
}

# require_service NAME: sets and exports NAME (from the environment or
# KS_SERVICES_FILE), or skips/fails the test. Not for $(...): a skip there
# would leave only the subshell.
require_service() {
        local v
        v=$(ks_service "$1")
        [[ -n $v ]] || skip_or_fail "$1 is not available (run under ctest's ks_services fixture, or set $1)"
        printf -v "$1" '%s' "$v"
        export "${1?}"
}

require_tool() {
        command -v "$1" >/dev/null 2>&1 || skip_or_fail "'$1' is not installed (bash infra/deps.sh install)"
}

assert_eq() {
        [[ $1 == "$2" ]] || fail "$3: expected '$2', got '$1'"
}

# wait_for SECONDS CMD...: until CMD succeeds; 1 on timeout.
wait_for() {
        local deadline=$((SECONDS + $1))
        shift
        until "$@"; do
                ((SECONDS < deadline)) || return 1
                sleep 0.5
        done
}

topics() { bash "$KAFKA_SH" topics "$@"; }

# app_table_rows: the kstreams-app tables (event_counts, revenue,
# user_sessions) as the jobs' JSON values, one a line, to compare with
# tests/apps/expected.py's. Uses the caller's q() (psql on its schema).
epoch_ms() { echo "(extract(epoch FROM $1) * 1000)::bigint"; }
app_table_rows() {
        q -c "SELECT json_build_object('job', 'event-count', 'event_type', event_type,
                      'window_start', $(epoch_ms window_start), 'window_end', $(epoch_ms window_end),
                      'count', count) FROM event_counts"
        q -c "SELECT json_build_object('job', 'revenue', 'currency', currency,
                      'window_start', $(epoch_ms window_start), 'window_end', $(epoch_ms window_end),
                      'revenue_cents', revenue_cents, 'purchases', purchases,
                      'avg_order_value_cents', avg_order_value_cents) FROM revenue"
        q -c "SELECT json_build_object('job', 'sessions', 'user_id', user_id,
                      'session_start', $(epoch_ms session_start), 'session_end', $(epoch_ms session_end),
                      'duration_ms', duration_ms, 'events', events,
                      'purchases', purchases, 'revenue_cents', revenue_cents)
               FROM user_sessions"
}

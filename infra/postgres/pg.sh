#!/usr/bin/env bash
# An ephemeral PostgreSQL cluster for tests and the demo, from Debian's
# postgresql package (no system service, no Docker). See infra/README.md.
#
#   pg.sh up [NAME]        initdb + start on a unix socket in its dir and on
#                          127.0.0.1:<free port>, create database kstreams,
#                          apply schema.sql; prints KS_PG_DSN=postgresql://...
#   pg.sh down [NAME]      stop it and delete its data
#   pg.sh stop [NAME]      stop it and keep its data (an outage: clients
#                          lose their connections and cannot reconnect)
#   pg.sh start [NAME]     start a stopped one again, same data and port
#   pg.sh status [NAME]    exit 0 and print KS_PG_DSN if it runs, 3 if not
#   pg.sh schema [NAME]    apply schema.sql (again: it is idempotent)
#   pg.sh psql [NAME] [-- PSQL_ARGS...]   open psql on it
#
# Environment:
#   KS_PG_DSN      when set, `up` starts nothing: it applies schema.sql to that
#                  database and prints it back; `down` does nothing.
#   KS_RUN_DIR     where instances live (default: <repo>/.run)
#   KS_PG_BINDIR   PostgreSQL's bin dir (default: newest /usr/lib/postgresql/*/bin)
#
# initdb refuses to run as root: as root, the cluster belongs to the
# `postgres` OS user (made by Debian's package) and its commands run through
# runuser. Only KS_PG_DSN=... goes to stdout.
set -euo pipefail

KS_SCRIPT_NAME=pg.sh
# shellcheck source=../common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
SCHEMA="$KS_INFRA_DIR/postgres/schema.sql"
DB_NAME=kstreams
DB_USER=postgres

usage() {
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
        exit "${1:-2}"
}

pg_bindir() {
        if [[ -n ${KS_PG_BINDIR:-} ]]; then
                [[ -x $KS_PG_BINDIR/initdb ]] || die "KS_PG_BINDIR=$KS_PG_BINDIR has no initdb"
                echo "$KS_PG_BINDIR"
                return
        fi
        local d
        d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
        [[ -n $d && -x $d/initdb ]] ||
                die "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb); install postgresql: bash infra/deps.sh install"
        echo "$d"
}

psql_bin() {
        command -v psql >/dev/null 2>&1 && { command -v psql; return; }
        echo "$(pg_bindir)/psql"
}

# as_owner CMD...: run as the cluster's owner (postgres when we are root).
as_owner() {
        if ((EUID == 0)); then
                runuser -u "$DB_USER" -- "$@"
        else
                "$@"
        fi
}

instance_dir() { echo "$KS_RUN_ROOT/pg-$1"; }

# Directory for the data and socket. Under .run/ when the owner can reach
# it and the socket path fits (108 bytes); else a fresh dir under /tmp.
choose_home() {
        local dir=$1
        if ((EUID != 0)) || as_owner test -x "$dir" 2>/dev/null; then
                if ((${#dir} < 80)); then
                        echo "$dir"
                        return
                fi
        fi
        mktemp -d /tmp/ks-pg.XXXXXX
}

apply_schema() {
        local dsn=$1
        [[ -r $SCHEMA ]] || die "cannot read $SCHEMA"
        if ! "$(psql_bin)" -X -q -v ON_ERROR_STOP=1 -d "$dsn" -f "$SCHEMA" >/dev/null; then
                die "applying $SCHEMA to $dsn failed"
        fi
}

# pg_start BINDIR HOME PORT: the postmaster, as `up` and `start` run it.
# fsync off: an ephemeral test cluster, never worth a disk flush.
pg_start() {
        local bindir=$1 home=$2 port=$3
        as_owner "$bindir/pg_ctl" -D "$home/data" -l "$home/postgres.log" \
                -w -t 60 -o "-c listen_addresses=127.0.0.1 -p $port -k $home/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=64MB" \
                start
}

cmd_up() {
        local name=${1:-default}
        check_name "$name"
        if [[ -n ${KS_PG_DSN:-} ]]; then
                log "KS_PG_DSN is set: using it, starting nothing"
                apply_schema "$KS_PG_DSN"
                echo "KS_PG_DSN=$KS_PG_DSN"
                return 0
        fi
        local dir home bindir port attempt started=$SECONDS
        dir=$(instance_dir "$name")
        if [[ -f $dir/env ]] && cmd_status "$name" >/dev/null 2>&1; then
                log "'$name' is already running ($dir)"
                cat "$dir/env"
                return 0
        fi
        bindir=$(pg_bindir)
        ((EUID != 0)) || id "$DB_USER" >/dev/null 2>&1 ||
                die "running as root but there is no '$DB_USER' OS user to own the cluster (install postgresql)"
        cmd_down "$name" >/dev/null 2>&1 || true
        mkdir -p "$dir"
        home=$(choose_home "$dir")
        echo "$home" >"$dir/home"
        mkdir -p "$home/data" "$home/sock"
        ((EUID != 0)) || chown -R "$DB_USER" "$home"
        chmod 700 "$home/data"
        if ! as_owner "$bindir/initdb" -D "$home/data" -U "$DB_USER" -E UTF8 \
                --locale=C --auth-local=trust --auth-host=trust --no-sync \
                >"$dir/initdb.log" 2>&1; then
                cat "$dir/initdb.log" >&2
                die "initdb failed in $home/data"
        fi
        for attempt in 1 2 3; do
                free_port port
                if pg_start "$bindir" "$home" "$port" >"$dir/pg_ctl.log" 2>&1; then
                        break
                fi
                if grep -q 'could not bind\|already in use' "$home/postgres.log" 2>/dev/null &&
                        ((attempt < 3)); then
                        log "port $port was taken meanwhile, retrying with another"
                        continue
                fi
                tail -n 30 "$home/postgres.log" >&2 2>/dev/null || cat "$dir/pg_ctl.log" >&2
                die "pg_ctl start failed (log: $home/postgres.log)"
        done
        local admin_dsn="postgresql://$DB_USER@127.0.0.1:$port/postgres"
        "$(psql_bin)" -X -q -v ON_ERROR_STOP=1 -d "$admin_dsn" \
                -c "CREATE DATABASE $DB_NAME" >/dev/null ||
                die "CREATE DATABASE $DB_NAME failed"
        local dsn="postgresql://$DB_USER@127.0.0.1:$port/$DB_NAME"
        apply_schema "$dsn"
        {
                echo "KS_PG_DSN=$dsn"
        } >"$dir/env"
        echo "KS_PG_SOCKET_DIR=$home/sock" >"$dir/socket"
        log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') '$name' started in $((SECONDS - started))s on 127.0.0.1:$port (socket dir $home/sock)"
        cat "$dir/env"
}

cmd_down() {
        local name=${1:-default}
        check_name "$name"
        if [[ -n ${KS_PG_DSN:-} ]]; then
                log "KS_PG_DSN is set: nothing of ours to stop"
                return 0
        fi
        local dir home
        dir=$(instance_dir "$name")
        if [[ ! -d $dir ]]; then
                log "'$name' is not running (no $dir)"
                return 0
        fi
        home=$(cat "$dir/home" 2>/dev/null || echo "$dir")
        stop_postmaster "$home"
        rm -rf "$home" "$dir"
        log "stopped '$name'"
}

# stop_postmaster HOME: its postmaster stops; the data stays.
stop_postmaster() {
        local home=$1 pid i
        [[ -f $home/data/postmaster.pid ]] || return 0
        pid=$(head -n1 "$home/data/postmaster.pid")
        as_owner "$(pg_bindir)/pg_ctl" -D "$home/data" -m fast -w -t 30 stop \
                >/dev/null 2>&1 || true
        # pg_ctl returns once postmaster.pid is gone, a moment before the
        # process itself.
        for ((i = 0; i < 50; i++)); do
                pid_alive "$pid" || break
                sleep 0.1
        done
        if pid_alive "$pid"; then
                log "postmaster $pid still running after pg_ctl stop, killing it"
                kill -KILL "$pid" 2>/dev/null || true
        fi
}

cmd_stop() {
        local name=${1:-default} dir
        check_name "$name"
        [[ -z ${KS_PG_DSN:-} ]] || die "KS_PG_DSN is set: not ours to stop"
        dir=$(instance_dir "$name")
        [[ -f $dir/env ]] || die "'$name' does not exist (pg.sh up $name)"
        stop_postmaster "$(cat "$dir/home")"
        log "stopped '$name' (data kept: pg.sh start $name)"
}

cmd_start() {
        local name=${1:-default} dir home dsn port
        check_name "$name"
        [[ -z ${KS_PG_DSN:-} ]] || die "KS_PG_DSN is set: not ours to start"
        dir=$(instance_dir "$name")
        [[ -f $dir/env ]] || die "'$name' does not exist (pg.sh up $name)"
        if cmd_status "$name" >/dev/null 2>&1; then
                log "'$name' is already running"
                return 0
        fi
        home=$(cat "$dir/home")
        dsn=$(cat "$dir/env")
        port=${dsn##*:}
        port=${port%%/*}
        pg_start "$(pg_bindir)" "$home" "$port" >"$dir/pg_ctl.log" 2>&1 ||
                die "pg_ctl start failed on port $port (log: $home/postgres.log)"
        log "started '$name' again on 127.0.0.1:$port"
}

cmd_status() {
        local name=${1:-default}
        check_name "$name"
        if [[ -n ${KS_PG_DSN:-} ]]; then
                echo "KS_PG_DSN=$KS_PG_DSN"
                return 0
        fi
        local dir home pid
        dir=$(instance_dir "$name")
        home=$(cat "$dir/home" 2>/dev/null || echo "$dir")
        pid=$(head -n1 "$home/data/postmaster.pid" 2>/dev/null || true)
        if [[ -f $dir/env ]] && pid_alive "$pid"; then
                cat "$dir/env"
                return 0
        fi
        log "'$name' is not running"
        return 3
}

current_dsn() {
        local name=$1 line
        if [[ -n ${KS_PG_DSN:-} ]]; then
                echo "$KS_PG_DSN"
                return
        fi
        line=$(cmd_status "$name") || die "PostgreSQL '$name' is not running (pg.sh up)"
        echo "${line#KS_PG_DSN=}"
}

cmd_schema() {
        local name=${1:-default}
        check_name "$name"
        apply_schema "$(current_dsn "$name")"
        log "applied $SCHEMA"
}

cmd_psql() {
        local name=default
        if [[ $# -gt 0 && $1 != -- ]]; then name=$1; shift; fi
        [[ ${1:-} == -- ]] && shift
        check_name "$name"
        exec "$(psql_bin)" -X -d "$(current_dsn "$name")" "$@"
}

main() {
        [[ $# -ge 1 ]] || usage 2
        local cmd=$1
        shift
        case $cmd in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        stop) cmd_stop "$@" ;;
        start) cmd_start "$@" ;;
        status) cmd_status "$@" ;;
        schema) cmd_schema "$@" ;;
        psql) cmd_psql "$@" ;;
        -h | --help | help) usage 0 ;;
        *) log "unknown command '$cmd'"; usage 2 ;;
        esac
}

main "$@"

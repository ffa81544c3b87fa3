# shellcheck shell=bash disable=SC2034
# Helpers sourced by infra/*.sh and tests/system/*.sh. Not a program.
# The sourcing script sets KS_SCRIPT_NAME before sourcing (for messages).

KS_INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KS_REPO_ROOT=$(cd "$KS_INFRA_DIR/.." && pwd)
KS_RUN_ROOT=${KS_RUN_DIR:-$KS_REPO_ROOT/.run}

log() { echo "${KS_SCRIPT_NAME:-infra}: $*" >&2; }
die() { echo "${KS_SCRIPT_NAME:-infra}: error: $*" >&2; exit 1; }

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# A TCP port on 127.0.0.1 that nobody listens on, below Linux's ephemeral
# range (32768-60999) so that outgoing connections do not take it meanwhile.
# Ports handed out before by this shell are avoided too. Racy by nature: the
# callers retry when a bind fails.
# Usage: free_port VAR   (sets VAR; a variable, not $(...), so that the
# record of ports handed out survives)
KS_TAKEN_PORTS=" "
free_port() {
        local -n ks_port_out=$1
        local p i
        for ((i = 0; i < 500; i++)); do
                p=$((20000 + RANDOM % 12000))
                [[ $KS_TAKEN_PORTS == *" $p "* ]] && continue
                if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                        KS_TAKEN_PORTS+="$p "
                        ks_port_out=$p
                        return 0
                fi
        done
        die "found no free TCP port on 127.0.0.1"
}

check_name() {
        [[ $1 =~ ^[A-Za-z0-9_.-]+$ ]] ||
                die "bad instance name '$1' (letters, digits, _ . - only)"
}

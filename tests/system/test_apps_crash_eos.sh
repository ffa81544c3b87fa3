#!/usr/bin/env bash
# test_apps_crash.sh under exactly_once_v2: the same two SIGKILLs in flight
# and the same PostgreSQL outage, and then every result exact: the tables
# and the output topic (read_committed) equal expected.py's results, each
# once, repartitioned jobs included, and each invalid event dead-lettered
# once per job.
#
#   test_apps_crash_eos.sh [--help]   (under ctest: ctest -R test_apps_crash_eos)
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
fi
KS_CRASH_GUARANTEE=exactly_once_v2 exec bash "$(dirname "${BASH_SOURCE[0]}")/test_apps_crash.sh"

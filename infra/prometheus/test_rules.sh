#!/usr/bin/env bash
# ctest unit/prometheus_rules: the alert rules and scrape configuration
# are valid (promtool check) and the rules fire as alerts_test.yml says
# (promtool test rules). Skips (77) without promtool unless CI=true.
set -euo pipefail
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! command -v promtool >/dev/null; then
        echo "promtool not found (Debian package prometheus)" >&2
        [[ ${CI:-} == true ]] && exit 1
        exit 77
fi
cd "$dir"
promtool check rules alerts.yml
promtool check config prometheus.yml
promtool test rules alerts_test.yml

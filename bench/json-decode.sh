#!/usr/bin/env bash
# JSON decode of user events on ONE core: our fast path (simdjson), jansson
# and Jackson (readTree and streaming), over the same generated records, in
# one run, with one combined table.
#
#   bench/json-decode.sh [BUILD_DIR]      (default: build)
#
# Environment: EVENTS (default 1000000), PASSES (default 7), CPU (the core
# to pin to, default 0), SEED (default 1).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${1:-$root/build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
events=${EVENTS:-1000000}
passes=${PASSES:-7}
cpu=${CPU:-0}
seed=${SEED:-1}

jars=/usr/share/java/jackson-databind.jar:/usr/share/java/jackson-core.jar:/usr/share/java/jackson-annotations.jar
for j in ${jars//:/ }; do
        [ -r "$j" ] || { echo "json-decode: $j is missing (apt-get install libjackson2-databind-java)" >&2; exit 1; }
done
command -v javac >/dev/null || { echo "json-decode: javac is missing (apt-get install openjdk-17-jdk-headless)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data=$work/user-events.jsonl

# Build (a no-op when up to date); show the log only if it fails.
if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S "$root" -B "$build" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
fi
cmake --build "$build" -j"$(nproc)" --target bench_json_decode >"$work/build.log" 2>&1 ||
        { cat "$work/build.log" >&2; exit 1; }
bench=$build/bench/bench_json_decode

classes=$build/bench/java-classes
src=$here/java/JacksonDecode.java
if [ ! -f "$classes/JacksonDecode.class" ] || [ "$src" -nt "$classes/JacksonDecode.class" ]; then
        mkdir -p "$classes"
        javac -cp "$jars" -d "$classes" "$src"
fi

echo "== JSON decode, one core (taskset -c $cpu): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo
# The records are generated once, written to disk (and flushed, so that no
# writeback runs during the measurements), then read by both benches.
"$bench" -n "$events" --seed "$seed" --write "$data" --write-only
sync "$data" 2>/dev/null || sync
echo
taskset -c "$cpu" "$bench" --read "$data" --passes "$passes" | tee "$work/c.out"
echo
taskset -c "$cpu" java -Xms2g -Xmx2g -cp "$jars:$classes" JacksonDecode \
        "$data" "$passes" | tee "$work/java.out"

echo
echo "== Combined ($events events, one core; median and best of $passes passes)"
grep -h '^RESULT' "$work/c.out" "$work/java.out" | awk -F'\t' '
        { name[NR] = $2; eps[NR] = $3; mbs[NR] = $4; ns[NR] = $5; sum[NR] = $6; best[NR] = $7
          if ($2 ~ /^Jackson/ && $3 > jmed) { jmed = $3; jmed_name = $2 }
          if ($2 ~ /^Jackson/ && $7 > jbest) { jbest = $7; jbest_name = $2 }
          if ($2 ~ /^kstreams/) { ours = $3; ours_best = $7 } }
        END {
                printf "%-28s %12s %8s %9s %9s %12s %9s\n", "decoder", "median ev/s", "MB/s",
                       "ns/event", "vs Jackson", "best ev/s", "vs Jackson"
                for (i = 1; i <= NR; i++)
                        printf "%-28s %12d %8.1f %9.1f %9.2fx %12d %9.2fx\n", name[i], eps[i], mbs[i],
                               ns[i], eps[i] / jmed, best[i], best[i] / jbest
                printf "\nours / Jackson best: %.2fx on medians (%s), %.2fx on best passes (%s)\n",
                       ours / jmed, jmed_name, ours_best / jbest, jbest_name
                for (i = 2; i <= NR; i++)
                        if ((sum[i] "") != (sum[1] "")) printf "WARNING: %s decoded different values than %s\n", name[i], name[1]
        }'

#!/usr/bin/env bash
# The event-count job on kstreams and on Kafka Streams (Java), on the same
# broker and the same input, next to its raw librdkafka limits, in one run:
# RUNS rounds, each round running every row once in turn (alternating), then
# one table of medians. Every kstreams and Kafka Streams run's output is
# checked against the counts computed from the generator.
#
#   bench/peer/run.sh [BUILD_DIR] [RECORDS] [RUNS]
#
# Environment:
#   KS_BOOTSTRAP   a broker to use; else one is started (infra/kafka/kafka.sh)
#   VARIANTS       more kstreams rows, ';'-separated, each a ','-separated
#                  list of name=value settings, e.g.
#                  VARIANTS='consumer.queued.min.messages=1000000'
#   THREADS        stream threads of the kstreams rows (default 1)
#   SCALING=0      leave out the 2-thread row: with THREADS=1 (and by
#                  default) one more kstreams row runs 2 stream threads with
#                  the settings of variant 1 (none without VARIANTS), and
#                  the table ends with its speed-up over that 1-thread row
#   PEER=0         leave out Kafka Streams (no Java, no Maven)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
records=${2:-1000000}
runs=${3:-3}
threads=${THREADS:-1}
bin="$build/bench/bench_event_count"
[[ -x "$bin" ]] || { echo "peer/run.sh: $bin missing: run make" >&2; exit 1; }
export KS_LOG_LEVEL=${KS_LOG_LEVEL:-3}

peer=${PEER:-1}
if ((peer)); then
        command -v mvn >/dev/null || { echo "peer/run.sh: mvn missing (PEER=0 to skip Kafka Streams)" >&2; exit 1; }
        if [[ ! -d $here/target/lib || -n $(find "$here/src" "$here/pom.xml" -newer "$here/target/lib" 2>/dev/null) ]]; then
                echo "building bench/peer (mvn package)" >&2
                mvn -q -B -f "$here/pom.xml" package >&2
                touch "$here/target/lib"
        fi
        kversion=$(ls "$here"/target/lib/kafka-streams-*.jar | sed 's/.*kafka-streams-\(.*\)\.jar/\1/')
fi

if [[ -z "${KS_BOOTSTRAP:-}" ]]; then
        eval "$(bash "$here/../../infra/kafka/kafka.sh" up bench)"
        trap 'bash "$here/../../infra/kafka/kafka.sh" down bench >/dev/null 2>&1' EXIT
fi
B=$KS_BOOTSTRAP
tag="ec-$$-$(date +%s)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ks-bench-peer.XXXXXX")

# rows: name|label
plural=; ((threads == 1)) || plural=s
rows=("raw-consume|raw librdkafka consume"
      "raw-pipe|raw consume + decode + produce keyed by type"
      "kstreams|kstreams ($threads thread$plural)")
IFS=';' read -r -a variants <<<"${VARIANTS:-}"
for i in "${!variants[@]}"; do
        rows+=("variant$i|kstreams ($threads thread$plural), variant $((i + 1))")
done
scaling=${SCALING:-1}
((threads == 1)) || scaling=0
base_row=kstreams
[[ -n ${VARIANTS:-} ]] && base_row=variant0
((scaling)) && rows+=("threads2|kstreams (2 threads)${VARIANTS:+, variant 1}")
((peer)) && rows+=("java|Kafka Streams $kversion (1 thread)")

# run ROW ROUND: one run; appends "secs cpu rss_kb load" to $tmp/ROW.
run() {
        local row=$1 round=$2 in out app load line sets=() v
        load=$(cut -d' ' -f1 /proc/loadavg)
        case $row in
        raw-consume)
                line=$("$bin" raw-consume --bootstrap "$B" --topic "$tag-base" -n "$records" | grep '^RESULT') ;;
        raw-pipe)
                line=$("$bin" raw-pipe --bootstrap "$B" --topic "$tag-base" --out "$tag-pipe-$round" -n "$records" 2>/dev/null | grep '^RESULT') ;;
        *)
                # A fresh input topic per run: the flush that closes the
                # windows must come after every input record.
                in="$tag-in-$row-$round" out="$tag-out-$row-$round" app="$tag-$row-$round"
                "$bin" produce --bootstrap "$B" --topic "$in" -n "$records" 2>/dev/null
                sleep 2
                load=$(cut -d' ' -f1 /proc/loadavg)
                if [[ $row == java ]]; then
                        line=$(java -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
                                -cp "$here/target/classes:$here/target/lib/*" \
                                io.kstreams.bench.EventCount --bootstrap "$B" --topic "$in" \
                                --out "$out" --records "$records" --app "$app" 2>"$tmp/$row.log" | grep '^RESULT')
                else
                        local vi= t=$threads
                        [[ $row == variant* ]] && vi=${row#variant}
                        [[ $row == threads2 ]] && t=2 && [[ -n ${VARIANTS:-} ]] && vi=0
                        if [[ -n $vi ]]; then
                                IFS=',' read -r -a v <<<"${variants[$vi]}"
                                for s in "${v[@]}"; do sets+=(--set "$s"); done
                        fi
                        line=$("$bin" kstreams --bootstrap "$B" --topic "$in" --out "$out" -n "$records" \
                                --app "$app" --threads "$t" "${sets[@]}" 2>"$tmp/$row.log" | grep '^RESULT')
                fi
                if "$bin" check --bootstrap "$B" --out "$out" -n "$records" >"$tmp/check" 2>&1; then
                        echo ok >>"$tmp/$row.check"
                else
                        echo FAIL >>"$tmp/$row.check"
                        echo "peer/run.sh: $row round $round: $(tail -n 3 "$tmp/check")" >&2
                fi
                grep -o 'windows=[0-9]*' "$tmp/check" >"$tmp/windows" || true ;;
        esac
        # RESULT records=N secs=S cpu=C rss_kb=R
        echo "$line" | awk -v load="$load" '{for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
                print f["secs"], f["cpu"], f["rss_kb"], load}' >>"$tmp/$row"
        echo "  round $round ${row}: $line (load $load)" >&2
}

up_before=$(uptime)
echo "producing $records user events into 6 partitions (the baselines' input)" >&2
"$bin" produce --bootstrap "$B" --topic "$tag-base" -n "$records" 2>/dev/null
for ((r = 1; r <= runs; r++)); do
        for row in "${rows[@]}"; do run "${row%%|*}" "$r"; done
done

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# stats ROW -> "records/s cpu_s_per_M rss_MiB load_min-load_max"
stats() {
        local f=$tmp/$1
        local rate cpu rss
        rate=$(awk -v n="$records" '{print n / $1}' "$f" | median)
        cpu=$(awk -v n="$records" '{print $2 / n * 1e6}' "$f" | median)
        rss=$(awk '{print $3 / 1024}' "$f" | median)
        echo "$rate $cpu $rss $(awk 'NR == 1 {lo = hi = $4} {if ($4 < lo) lo = $4; if ($4 > hi) hi = $4} END {print lo "-" hi}' "$f")"
}

echo
echo "event count: $records user events, 6 partitions, one broker on this machine ($(nproc) cores);"
echo "medians of $runs alternating runs; load = 1-min load average before each run (min-max)"
printf '%-52s %10s %12s %9s %11s\n' "" "records/s" "CPU s/M rec" "peak RSS" "load"
declare -A S
for row in "${rows[@]}"; do
        name=${row%%|*} label=${row#*|}
        S[$name]=$(stats "$name")
        read -r rate cpu rss load <<<"${S[$name]}"
        if [[ $name == raw-consume || $name == raw-pipe ]]; then
                printf '%-52s %10.0f %12.2f %9s %11s\n' "$label" "$rate" "$cpu" "-" "$load"
        else
                printf '%-52s %10.0f %12.2f %5.0f MiB %11s\n' "$label" "$rate" "$cpu" "$rss" "$load"
        fi
done
for i in "${!variants[@]}"; do echo "variant $((i + 1)): ${variants[$i]}"; done
echo
read -r pipe_rate _ <<<"${S[raw-pipe]}"
((peer)) && read -r j_rate j_cpu j_rss _ <<<"${S[java]}"
for row in "${rows[@]}"; do
        name=${row%%|*} label=${row#*|}
        [[ $name == kstreams || $name == variant* || $name == threads2 ]] || continue
        read -r ks_rate ks_cpu ks_rss _ <<<"${S[$name]}"
        awk -v l="$label" -v k="$ks_rate" -v p="$pipe_rate" 'BEGIN {printf "%s / raw pipe: %.2fx records/s\n", l, k / p}'
        ((peer)) && awk -v l="$label" -v k="$ks_rate" -v j="$j_rate" -v kc="$ks_cpu" -v jc="$j_cpu" -v kr="$ks_rss" -v jr="$j_rss" 'BEGIN {
                printf "%s / Kafka Streams: %.2fx records/s, 1/%.1f the CPU per record, 1/%.1f the peak RSS\n",
                        l, k / j, jc / kc, jr / kr }'
done
if ((scaling)); then
        read -r r1 c1 _ <<<"${S[$base_row]}"
        read -r r2 c2 _ <<<"${S[threads2]}"
        awk -v a="$r1" -v b="$r2" -v ca="$c1" -v cb="$c2" 'BEGIN {
                printf "2 stream threads / 1 (same settings): %.2fx records/s, %.2fx the CPU per record\n", b / a, cb / ca }'
fi
echo "uptime before: $up_before"
echo "uptime after:  $(uptime)"
printf 'output check (every window and count against the generator, %s): ' "$(cat "$tmp/windows" 2>/dev/null)"
fail=0
for row in "${rows[@]}"; do
        name=${row%%|*}
        [[ -f $tmp/$name.check ]] || continue
        label=$name
        [[ $name == variant* ]] && label="variant $((${name#variant} + 1))"
        printf '%s %s/%s ok; ' "$label" "$(grep -c ok "$tmp/$name.check" || true)" "$runs"
        grep -q FAIL "$tmp/$name.check" && fail=1
done
echo
rm -rf "$tmp"
exit "$fail"

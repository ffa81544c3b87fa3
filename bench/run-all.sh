#!/usr/bin/env bash
# `make bench`: the event-count job on kstreams and on Kafka Streams (Java),
# on one broker with the same input, next to the raw librdkafka limits, as
# one table (bench/peer/run.sh; bench/peer/README.md says what it measures).
# Then exactly_once_v2 next to at-least-once (bench/run-eos.sh). Starts a
# real broker unless KS_BOOTSTRAP is set.
#
#   RECORDS=1000000 RUNS=3   input size and alternating rounds
#   VARIANTS=...             extra kstreams rows (see bench/peer/run.sh); by
#                            default the consumer prefetch that covers
#                            librdkafka 2.0.2's 1 s fetch back-off
#   EOS=0                    leave out exactly_once_v2 next to at-least-once
#                            (bench/run-eos.sh: throughput and latency;
#                            EOS_RECORDS=500000 EOS_RUNS=2)
#   BENCH_ALL=1              then also the JSON decode, stateless and state
#                            benchmarks and the calls per record (each
#                            prints its own figures)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
export KS_LOG_LEVEL=${KS_LOG_LEVEL:-3}
export VARIANTS=${VARIANTS-consumer.queued.min.messages=1000000,consumer.queued.max.messages.kbytes=131072}
# One broker for every benchmark of the run.
if [[ -z "${KS_BOOTSTRAP:-}" ]]; then
        eval "$(bash "$here/../infra/kafka/kafka.sh" up bench)"
        export KS_BOOTSTRAP
        trap 'bash "$here/../infra/kafka/kafka.sh" down bench >/dev/null 2>&1' EXIT
fi
echo "== event count: kstreams vs Kafka Streams vs raw librdkafka (bench/peer/run.sh)"
bash "$here/peer/run.sh" "$build" "${RECORDS:-1000000}" "${RUNS:-3}"
if [[ ${EOS:-1} == 1 ]]; then
        echo
        echo "== exactly_once_v2 vs at_least_once: throughput and latency (bench/run-eos.sh)"
        bash "$here/run-eos.sh" "$build" "${EOS_RECORDS:-500000}" "${EOS_RUNS:-2}"
fi
[[ ${BENCH_ALL:-0} == 1 ]] || exit 0
echo
echo "== JSON decode (bench/json-decode.sh)"
bash "$here/json-decode.sh" "$build"
echo
echo "== stateless topology on a real broker (bench/run-stateless.sh)"
bash "$here/run-stateless.sh" "$build" "${RECORDS:-1000000}"
echo
echo "== state: restoration and windowed count (bench/run-state.sh)"
bash "$here/run-state.sh" "$build"
echo
echo "== malloc, mutex and clock_gettime calls per record (bench/mallocs.sh)"
bash "$here/mallocs.sh" "$build"

#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# a bounded time. `make fuzz` calls this.
#
#   fuzz.sh [BUILD_DIR [SECONDS [TARGET...]]]
#
# BUILD_DIR defaults to build-fuzz, SECONDS (per target) to $FUZZ_SECONDS
# or 60, TARGETs to all (tests/fuzz/targets.cmake). Each target starts from
# its checked-in seeds (tests/fuzz/corpus/<target>/) plus what earlier runs
# found (BUILD_DIR/fuzz-corpus/<target>/, kept between runs, not checked
# in). A crashing input is written to BUILD_DIR/fuzz-artifacts/<target>/;
# the script then fails and says how to keep it as a regression test.
# Without clang it says so and exits 0, except with CI=true (exit 1).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-build-fuzz}
seconds=${2:-${FUZZ_SECONDS:-60}}
shift $(($# < 2 ? $# : 2))
log() { echo "fuzz: $*" >&2; }

if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null ||
        ! compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' >/dev/null; then
        log "clang with libFuzzer not found: fuzzing skipped" \
                "(install: apt-get install clang libclang-rt-14-dev, or bash infra/deps.sh install)"
        [[ ${CI:-} == true ]] && exit 1
        exit 0
fi

read -ra all <<<"$(sed -n 's/^set(KS_FUZZ_TARGETS \(.*\))$/\1/p' "$here/targets.cmake")"
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")

cd "$root"
CC=clang CXX=clang++ cmake -S . -B "$build" -DKS_FUZZ=ON \
        -DKS_SANITIZE=address,undefined -DKS_BUILD_TESTS=OFF \
        -DKS_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# Only the fuzz targets: clang's sanitizers do not link into the shared
# libraries (-Wl,--no-undefined), which the targets do not need.
cmake --build "$build" -j "${JOBS:-2}" --target "${all[@]/#/fuzz_}" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export KS_LOG_LEVEL=${KS_LOG_LEVEL:-0}
failed=()
summary=()
for t in "${targets[@]}"; do
        corpus="$build/fuzz-corpus/$t"
        artifacts="$build/fuzz-artifacts/$t"
        mkdir -p "$corpus" "$artifacts"
        out="$build/fuzz-$t.log"
        log "$t: ${seconds}s"
        rc=0
        "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=20 \
                -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
                -artifact_prefix="$artifacts/" "$corpus" "$here/corpus/$t" \
                >"$out" 2>&1 || rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n1)
        units=$(find "$corpus" -type f | wc -l)
        if ((rc)); then
                failed+=("$t")
                grep -m1 -A20 -E '^==[0-9]+==ERROR|runtime error|deadly signal|timeout after' "$out" >&2 || tail -n 30 "$out" >&2
                summary+=("$t: CRASH after ${execs:-?} executions (log $out, input in $artifacts/)")
        else
                summary+=("$t: ${execs:-?} executions in ${seconds}s, no crash, corpus $units inputs")
        fi
done
for s in "${summary[@]}"; do log "$s"; done
if ((${#failed[@]})); then
        log "crashed: ${failed[*]}. Fix it, then keep the input as a regression test:"
        log "  cp $build/fuzz-artifacts/<target>/crash-* tests/fuzz/regressions/<target>/"
        exit 1
fi

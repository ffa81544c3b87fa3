#!/usr/bin/env bash
# A full disk under the state directory: ks_test_app counts 3000 distinct
# 400-byte keys (two records each) with its state.dir on a 1 MiB tmpfs. The
# store does not fit: the stream thread must fail with an error that says
# so and names the store and the directory, and the process must exit
# rather than hang. Then space comes back (the tmpfs is remounted at
# 64 MiB, same directory) and a restart must give every key exactly 2:
# nothing lost, nothing counted twice. Needs root (mount).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib_system.sh"

require_service KS_BOOTSTRAP
require_tool kcat
APP=$KS_BINARY_DIR/tests/ks_test_app
[[ -x $APP ]] || fail "build ks_test_app first"

tmp=$(mktemp -d)
small=$tmp/small
app_pid=
cleanup() {
        [[ -n $app_pid ]] && kill -KILL "$app_pid" 2>/dev/null || true
        umount "$small" 2>/dev/null || true
        rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$small"
mount -t tmpfs -o size=1m tmpfs "$small" 2>"$tmp/mount.err" ||
        skip_or_fail "cannot mount a tmpfs (needs root): $(cat "$tmp/mount.err")"

p=full-disk-$$-$RANDOM
in=$p-in out=$p-out
pad=$(printf '%0400d' 0)
for round in 1 2; do
        for i in $(seq 0 2999); do echo "key-$i-$pad|{\"id\":$i}"; done
done >"$tmp/in"
kcat -b "$KS_BOOTSTRAP" -P -t "$in" -K '|' <"$tmp/in" || fail "kcat could not produce"

run_app() {
        "$APP" --bootstrap "$KS_BOOTSTRAP" --app-id "$p" --input "$in" \
                --output "$out" --mode count --cache-bytes 0 --commit-ms 200 \
                --state-dir "$small/state" >>"$1" 2>&1 &
        app_pid=$!
}

# 1. The state does not fit: a clear error, and the process ends.
run_app "$tmp/run1.log"
deadline=$((SECONDS + 120))
while kill -0 "$app_pid" 2>/dev/null; do
        ((SECONDS < deadline)) || { tail -n 20 "$tmp/run1.log" >&2; fail "no error after 120 s with a full disk (a stall)"; }
        sleep 0.5
done
rc=0
wait "$app_pid" || rc=$?
app_pid=
((rc != 0)) || fail "the app exited 0 although its state did not fit"
err=$(grep -m1 -E 'No space left on device|file system of the state directory is full' "$tmp/run1.log" || true)
[[ -n $err ]] || { tail -n 20 "$tmp/run1.log" >&2; fail "the error does not say the disk is full"; }
[[ $err == *counts* ]] || fail "the error does not name the store 'counts': $err"
[[ $err == *"$small/state"* ]] || fail "the error does not name the state directory: $err"

# 2. Space is back: a restart in the same directory counts exactly.
mount -o remount,size=64m "$small" || fail "cannot grow the tmpfs"
run_app "$tmp/run2.log"
counts() {
        kcat -b "$KS_BOOTSTRAP" -C -t "$out" -o beginning -e -q -s value='>q' \
                -f '%k %s\n' 2>/dev/null |
                awk '{ c[$1] = $2 } END { for (k in c) n[c[k]]++; for (v in n) print v, n[v] }'
}
done_counting() {
        kill -0 "$app_pid" 2>/dev/null || { tail -n 20 "$tmp/run2.log" >&2; fail "the restarted app exited"; }
        [[ $(counts) == "2 3000" ]]
}
wait_for 120 done_counting || fail "after the restart the last counts per key are not all 2 (value keys): $(counts | tr '\n' ' ')"
kill -TERM "$app_pid"
rc=0
wait "$app_pid" || rc=$?
app_pid=
((rc == 0)) || fail "the restarted app did not close cleanly"
pass "full disk: '$(cut -c1-200 <<<"$err")'; after the restart all 3000 keys count 2"

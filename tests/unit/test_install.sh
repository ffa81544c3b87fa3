#!/usr/bin/env bash
# Installs kstreams into a temporary prefix, then builds an outside program
# against it twice: with pkg-config and with CMake's find_package.
set -euo pipefail
: "${KS_BINARY_DIR:?}" "${KS_SOURCE_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
cmake --install "$KS_BINARY_DIR" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/ | head -1)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
export LD_LIBRARY_PATH="$libdir"
# A sanitizer build's libraries need the outside program built the same way.
san=()
[[ -n "${KS_SANITIZE:-}" ]] && san=(-fsanitize="$KS_SANITIZE")

echo "== pkg-config"
pkg-config --exists kstreams kstreams-testkit
cc -Wall -Wextra -Werror "${san[@]}" -o "$tmp/consumer-pc" \
   "$KS_SOURCE_DIR/tests/install/consumer.c" \
   $(pkg-config --cflags --libs kstreams-testkit)
"$tmp/consumer-pc"

echo "== cmake find_package"
cmake -S "$KS_SOURCE_DIR/tests/install" -B "$tmp/cmake-build" \
      -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="${san[*]}" \
      -DCMAKE_EXE_LINKER_FLAGS="${san[*]}" >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
"$tmp/cmake-build/consumer"
echo "install test: ok"

#!/usr/bin/env bash
# Install what is missing, build, and run the whole test suite (unit, fuzz-corpus replay,
# integration against real servers on loopback).
#   scripts/test.sh                 gcc, -Werror, RelWithDebInfo, into build/
#   scripts/test.sh --sanitize      the same under AddressSanitizer + UBSan, into build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
"$PWD/scripts/install-deps.sh" --test

dir=build
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  flags=(-DCMAKE_BUILD_TYPE=Debug -DBERTH_SANITIZE=address,undefined)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
cmake -S . -B "$dir" "${flags[@]}" -DBERTH_WERROR=ON >/dev/null
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)"

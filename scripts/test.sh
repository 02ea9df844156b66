#!/usr/bin/env bash
# Installs what the tests need, builds imgspool and runs every test:
#   1. the whole suite (unit + integration + S3 against s3rver on 127.0.0.1),
#   2. the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer, but for the
#      tests labelled `system` (they install the package and add users: once is enough),
#   3. the concurrent parts under ThreadSanitizer,
#   4. the benchmark's smoke run on 3 images.
# SKIP_SANITIZERS=1 or SKIP_BENCH=1 leave out steps 2-3 or 4 (for a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)

bash scripts/install-deps.sh --test

step() { printf '\n==== %s (%s)\n' "$1" "$(date -u +%T)"; }

step "build and test"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure --no-tests=error -j"$jobs" --timeout 300

if [[ -z ${SKIP_SANITIZERS:-} ]]; then
  step "AddressSanitizer + UBSan"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DIMGSPOOL_SANITIZE=address -DBUILD_TESTING=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    LSAN_OPTIONS=suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 600 -LE system

  step "ThreadSanitizer (concurrent parts)"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DIMGSPOOL_SANITIZE=thread -DBUILD_TESTING=ON >/dev/null
  tsan_targets=$(sed -n 's/^target: //p' tests/sanitizers/tsan-targets.txt)
  cmake --build build-tsan -j"$jobs" --target $tsan_targets
  TSAN_OPTIONS=halt_on_error=1:suppressions=$root/tests/sanitizers/tsan.supp \
    ctest --test-dir build-tsan --output-on-failure -j"$jobs" --timeout 600 \
      -R "$(sed -n 's/^tests: //p' tests/sanitizers/tsan-targets.txt)"
fi

if [[ -z ${SKIP_BENCH:-} && -f bench/run.sh ]]; then
  step "benchmark smoke run (3 images)"
  bash bench/install-deps.sh
  bash bench/run.sh --smoke --imgspool build/imgspool
fi
step "all tests passed"

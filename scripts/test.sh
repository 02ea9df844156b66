#!/usr/bin/env bash
# Installs what the tests need, builds imgspool and runs every test:
#   1. the whole suite (unit + integration + S3 against s3rver on 127.0.0.1),
#   2. the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer, but for the
#      tests labelled `system` (they install the package and add users: once is enough) and the
#      integration suite's second run on PostgreSQL (pg.*: the same code paths in the daemon as
#      on SQLite but for the job record, whose PostgreSQL tests do run under the sanitizers),
#   3. the concurrent parts under ThreadSanitizer,
#   4. the benchmark's smoke run on 3 images (run after step 1, while step 2 builds).
# SKIP_SANITIZERS=1 or SKIP_BENCH=1 leave out steps 2-3 or 4 (for a quick local run).
#
# Why it is laid out the way it is (CI is a 2-core machine): the tests mostly wait on daemons,
# timers and child processes, the builds are all CPU. So each sanitizer build runs in the
# background at the lowest CPU priority (nice 19) while the previous suite runs in the
# foreground: the compiler gets the cores the tests leave idle and hardly slows a test down. For
# the same reason ctest runs more tests at once than there are cores (IMGSPOOL_TEST_JOBS,
# default 2 per core: some tests time answers in milliseconds, so not many more).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)
test_jobs=${IMGSPOOL_TEST_JOBS:-$((jobs * 2))}

bash scripts/install-deps.sh --test

step() { printf '\n==== %s (%s)\n' "$1" "$(date -u +%T)"; }

# Ninja when it is there (less overhead per target than make); ccache when it is there: its
# cache outlives a clean clone on a machine that is used again.
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# (A folder configured before keeps its generator: cmake refuses to switch.)
configure() {
  local dir=$1 gen=()
  shift
  [[ -f $dir/CMakeCache.txt ]] || gen=("${generator[@]}")
  cmake -S . -B "$dir" "${gen[@]}" "${launcher[@]}" -DBUILD_TESTING=ON "$@" >/dev/null
}

# A build in the background at nice 19 (not SCHED_IDLE: the test programs that gtest runs at the
# end of each link must still get some CPU within their 30 s discovery timeout). Its output goes
# to <dir>/build.log, which finish_background prints once the build is over.
bg_pid=""
bg_dir=""
background_build() {
  bg_dir=$1
  shift
  # setsid: the build is its own process group, so it can be stopped whole if a test fails.
  setsid nice -n 19 cmake --build "$bg_dir" -j"$jobs" "$@" >"$bg_dir/build.log" 2>&1 &
  bg_pid=$!
}
finish_background() {
  local rc=0
  wait "$bg_pid" || rc=$?
  bg_pid=""
  printf -- '---- %s/build.log\n' "$bg_dir"
  cat "$bg_dir/build.log"
  if ((rc != 0)); then
    echo "test.sh: the build in $bg_dir failed ($rc)" >&2
    exit "$rc"
  fi
}
stop_background() { [[ -z $bg_pid ]] || kill -- -"$bg_pid" 2>/dev/null || true; }
trap stop_background EXIT

# ctest starts the longest tests first when it knows their cost: give a later suite the costs
# measured in the first one (same test names).
reuse_costs() {
  mkdir -p "$1/Testing/Temporary"
  cp build/Testing/Temporary/CTestCostData.txt "$1/Testing/Temporary/" 2>/dev/null || true
}

bench_deps_pid=""
if [[ -z ${SKIP_BENCH:-} && -f bench/run.sh ]]; then
  # Downloads while the first build compiles; awaited before any test, as the `system` tests
  # use dpkg too.
  bench_deps_log=$(mktemp)
  bash bench/install-deps.sh >"$bench_deps_log" 2>&1 &
  bench_deps_pid=$!
fi

step "build"
configure build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMGSPOOL_LINE_TABLES_ONLY=ON
cmake --build build -j"$jobs"

sanitizers=""
[[ -n ${SKIP_SANITIZERS:-} ]] || sanitizers=1
if [[ -n $sanitizers ]]; then
  step "AddressSanitizer + UBSan build (background)"
  configure build-asan -DCMAKE_BUILD_TYPE=Debug -DIMGSPOOL_SANITIZE=address -DIMGSPOOL_LINE_TABLES_ONLY=ON
  background_build build-asan
fi

if [[ -n $bench_deps_pid ]]; then
  rc=0
  wait "$bench_deps_pid" || rc=$?
  cat "$bench_deps_log"
  rm -f "$bench_deps_log"
  ((rc == 0)) || { echo "test.sh: bench/install-deps.sh failed ($rc)" >&2; exit "$rc"; }
fi

step "test"
ctest --test-dir build --output-on-failure --no-tests=error -j"$test_jobs" --timeout 300

# Here, while the ASan build still has minutes to go: the benchmark is CPU work at normal
# priority, which the build (nice 19) yields to.
if [[ -n $bench_deps_pid ]]; then
  step "benchmark smoke run (3 images)"
  bash bench/run.sh --smoke --imgspool build/imgspool
fi

if [[ -n $sanitizers ]]; then
  finish_background
  step "ThreadSanitizer build (background)"
  configure build-tsan -DCMAKE_BUILD_TYPE=Debug -DIMGSPOOL_SANITIZE=thread -DIMGSPOOL_LINE_TABLES_ONLY=ON
  tsan_targets=$(sed -n 's/^target: //p' tests/sanitizers/tsan-targets.txt)
  # shellcheck disable=SC2086  # a list of target names
  background_build build-tsan --target $tsan_targets

  step "AddressSanitizer + UBSan tests"
  reuse_costs build-asan
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    LSAN_OPTIONS=suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$test_jobs" --timeout 600 -LE system -E '^pg[.]'

  finish_background
  step "ThreadSanitizer tests (concurrent parts)"
  reuse_costs build-tsan
  TSAN_OPTIONS=halt_on_error=1:suppressions=$root/tests/sanitizers/tsan.supp \
    ctest --test-dir build-tsan --output-on-failure -j"$test_jobs" --timeout 600 \
      -R "$(sed -n 's/^tests: //p' tests/sanitizers/tsan-targets.txt)"
fi
step "all tests passed"

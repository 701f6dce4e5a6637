#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input with libFuzzer under AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 600 seconds for each of every target, one at a time)
#
# Targets: safetensors npy net_yaml experiment_yaml decode checkpoint_state (fuzz/fuzz_<target>.cpp).
# Builds build-fuzz/ with clang (clang, libclang-rt-dev and libomp-dev from Debian), then runs each target
# from its committed seed corpus fuzz/corpus/<target>/; new interesting inputs go to
# build-fuzz/corpus/<target>/ (the committed corpus is not touched), crashes, leaks, timeouts and
# out-of-memory inputs to build-fuzz/findings/<target>/, the log to build-fuzz/logs/<target>.log. It keeps
# fuzzing after a finding (fork mode) and ends with one line per target: executions and findings.
# A finding, once fixed, goes into fuzz/corpus/<target>/ so the test suite replays it (fuzz_corpus_<target>).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors npy net_yaml experiment_yaml decode checkpoint_state)
build=${MPNCOV_FUZZ_BUILD_DIR:-build-fuzz}

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (apt-get install clang libclang-rt-dev libomp-dev)"; exit 2; }
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DMPNCOV_FUZZ=ON -DMPNCOV_SANITIZE=ON -DMPNCOV_CUDA=OFF \
  -DMPNCOV_TESTS=OFF -DCMAKE_BUILD_TYPE=None -DCMAKE_C_FLAGS="-O1 -g" -DCMAKE_CXX_FLAGS="-O1 -g" \
  ${MPNCOV_FUZZ_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target "${targets[@]/#/fuzz_}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t" "$build/findings/$t" "$build/logs"
  log="$build/logs/$t.log"
  echo "== fuzz_$t for ${seconds}s (log: $log)"
  # The malformed configuration files seed the YAML targets too.
  extra=()
  [ "$t" = net_yaml ] && extra=(tests/corpus/bad_nets)
  [ "$t" = experiment_yaml ] && extra=(tests/corpus/bad_experiments)
  # Fork mode (one worker) keeps going after a crash, leak, timeout or OOM and saves each input.
  "$build/fuzz_$t" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 -max_total_time="$seconds" \
    -timeout=20 -rss_limit_mb=3072 -malloc_limit_mb=2048 -max_len=65536 -print_funcs=0 \
    -artifact_prefix="$build/findings/$t/" "$build/corpus/$t" "fuzz/corpus/$t" "${extra[@]}" >"$log" 2>&1 || true
  execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  findings=$(find "$build/findings/$t" -type f | wc -l)
  summary+=("$t: ${execs:-0} executions, $findings findings in $build/findings/$t/")
done
printf '%s\n' "${summary[@]}"

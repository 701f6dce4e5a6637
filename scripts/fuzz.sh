#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input with libFuzzer under AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 600 seconds for each of every target, one at a time)
#
# Targets: safetensors npy net_yaml experiment_yaml decode checkpoint_state (fuzz/fuzz_<target>.cpp).
# Needs clang with its libFuzzer and sanitizer runtimes: scripts/install-deps.sh --fuzz. Builds build-fuzz/
# with clang, then runs each target from its committed seed corpus fuzz/corpus/<target>/; new interesting
# inputs go to build-fuzz/corpus/<target>/ (the committed corpus is not touched), crashes, leaks, timeouts
# and out-of-memory inputs to build-fuzz/findings/<target>/, the log to build-fuzz/logs/<target>.log. It
# keeps fuzzing after a finding (fork mode) and ends with one line per target: seconds, executions, rate,
# corpus size and findings. A finding, once fixed, goes into fuzz/corpus/<target>/ so the test suite
# replays it (fuzz_corpus_<target>). On a shared machine run it under `nice -n 19`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors npy net_yaml experiment_yaml decode checkpoint_state)
build=${MPNCOV_FUZZ_BUILD_DIR:-build-fuzz}

missing="run scripts/install-deps.sh --fuzz (clang, libclang-rt-dev, libomp-dev, llvm)"
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found: $missing"; exit 2; }
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe/probe.cpp"
clang++ -fsanitize=fuzzer,address,undefined "$probe/probe.cpp" -o "$probe/probe" 2>/dev/null ||
  { echo "fuzz.sh: clang++ cannot link a libFuzzer + ASan/UBSan program: $missing"; exit 2; }

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
  start=$SECONDS
  "$build/fuzz_$t" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 -max_total_time="$seconds" \
    -timeout=20 -rss_limit_mb=3072 -malloc_limit_mb=2048 -max_len=65536 -print_funcs=0 \
    -artifact_prefix="$build/findings/$t/" "$build/corpus/$t" "fuzz/corpus/$t" "${extra[@]}" >"$log" 2>&1 || true
  took=$((SECONDS - start))
  # The last status line: "#EXECS: cov: .. ft: .. corp: N exec/s .. oom/timeout/crash: a/b/c time: ..".
  last=$(grep -E '^#[0-9]+: ' "$log" | tail -1 || true)
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
  corpus=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
  findings=$(find "$build/findings/$t" -type f | wc -l)
  summary+=("$t: ${took}s, ${execs:-0} executions ($(( ${execs:-0} / (took > 0 ? took : 1) ))/s), corpus ${corpus:-?} inputs, $findings findings in $build/findings/$t/")
done
printf '%s\n' "${summary[@]}"

#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds (CUDA for one architecture when the toolkit is
# present, to keep the build short), runs every test with CTest, then the unit tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer (CPU-only build).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
export OMP_WAIT_POLICY=PASSIVE

echo "== build (release${MPNCOV_TEST_CUDA_ARCHS:+, cuda ${MPNCOV_TEST_CUDA_ARCHS}}) =="
MPNCOV_BUILD_DIR=build scripts/build.sh -DMPNCOV_CUDA_ARCHS="${MPNCOV_TEST_CUDA_ARCHS:-90}"
echo "== tests =="
ctest --test-dir build --output-on-failure --parallel "$jobs" --timeout 1800

if [ "${MPNCOV_SKIP_SANITIZE:-0}" != "1" ]; then
  echo "== sanitizer build (ASan + UBSan, cpu only) =="
  MPNCOV_BUILD_DIR=build-sanitize scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPNCOV_CUDA=OFF \
    -DMPNCOV_SANITIZE=ON
  echo "== unit tests under sanitizers =="
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-sanitize --output-on-failure --parallel "$jobs" -L unit --timeout 1800
fi
echo "== all tests passed =="

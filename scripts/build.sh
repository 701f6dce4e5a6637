#!/usr/bin/env bash
# Configures and builds mpncov into build/ (or $MPNCOV_BUILD_DIR). Extra arguments go to CMake,
# e.g. scripts/build.sh -DMPNCOV_CUDA=OFF or -DMPNCOV_CUDA_ARCHS=90.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${MPNCOV_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build_dir" --parallel "$(nproc)"

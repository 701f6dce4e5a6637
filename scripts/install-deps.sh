#!/usr/bin/env bash
# Installs everything mpncov needs from Debian packages. Idempotent: safe to run again.
#   scripts/install-deps.sh           what the build, the tests and CI need
#   scripts/install-deps.sh --fuzz    that, plus clang and its libFuzzer and sanitizer runtimes for
#                                     scripts/fuzz.sh (not needed by CI, which replays the corpora with gcc)
# The CUDA toolkit (with cuDNN and cuBLAS) is not a Debian package here: it is found at /usr/local/cuda
# or CUDAToolkit_ROOT when present, and the GPU backend builds only then.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libopenblas-openmp-dev   # the OpenMP OpenBLAS: shares libgomp's threads instead of fighting them
  libdnnl-dev              # oneDNN: float32 convolution on the CPU (core/cpu/conv_onednn.cpp)
  libyaml-cpp-dev libstb-dev doctest-dev
  nlohmann-json3-dev       # JSON: safetensors headers, checkpoint metadata (core/json.h)
  libjpeg62-turbo-dev libpng-dev libfftw3-dev
  libopenmpi-dev openmpi-bin   # distributed training over MPI (optional: the build says when it is absent)
  python3-torch python3-torchvision python3-numpy python3-pil   # the oracle for tests and the peer for benchmarks
  mate-backgrounds   # real photographs for the data oracle tests and the loader benchmark (optional)
)
case "${1:-}" in
  "") ;;
  --fuzz)
    # clang, libFuzzer + ASan/UBSan runtimes (libclang-rt-dev), clang's OpenMP, llvm-symbolizer for reports
    packages+=(clang libclang-rt-dev libomp-dev llvm) ;;
  *) echo "usage: scripts/install-deps.sh [--fuzz]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"

#!/usr/bin/env bash
# Prepares the one-call GPU check (docs/gpu.md), here, without a GPU:
#   1. builds mpncov with CUDA for sm_90 only into build-gpu/ (reused between calls; MPNCOV_JOBS, default 2);
#   2. copies the programs the check runs, stripped, into build-gpu/carry/bin/;
#   3. gathers the shared libraries they need that the GPU machine lacks (yaml-cpp, OpenBLAS, libgfortran,
#      libjpeg, FFTW, ...; found with ldd) into build-gpu/carry/lib/. CUDA, cuBLAS, cuFFT and cuDNN are not
#      carried: the GPU machine has them in PyTorch's Python packages (scripts/gpu-check.sh finds them
#      there); nor are glibc and libstdc++, which it has (libstdc++ and libgcc_s go to carry/fallback/,
#      used there only if its own are too old);
#   4. adds a few photographs for the loader benchmark (carry/photos/) and a MANIFEST;
#   5. checks that every library resolves from carry/lib or the allowed system set (and, where mount
#      namespaces work, runs the program with the system copies hidden);
#   6. packs carry/ into .gpu-libs/payload.tar.xz (OpenBLAS alone is 35 MiB unpacked, 4 MiB packed), the one
#      path to carry, and checks that the working tree plus .gpu-libs stays under the device tool's 64 MiB.
# Why prebuilt binaries rather than a build there: the GPU machine has nvcc and CMake but no yaml-cpp,
# OpenBLAS, FFTW or libjpeg headers and no package registry, and a CUDA build there would cost minutes of
# the session's 15 minutes of device time. This machine (Debian 12, glibc 2.36) builds binaries that need
# nothing newer than what a current CUDA 13 image has; the MANIFEST records the glibc versions they need.
#
# usage: scripts/gpu-prepare.sh [--no-build]    (--no-build: gather from the existing build-gpu/)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build="build-gpu"
dest=$build/carry
pack=.gpu-libs
limit=$((64 * 1024 * 1024))
programs=(mpncov mpncov_tests gpu_bench loader_bench)
photos_src=/usr/share/backgrounds/mate/nature
photos=(Aqua.jpg FreshFlower.jpg Garden.jpg GreenMeadow.jpg LadyBird.jpg YellowFlower.jpg)

no_build=0
for a in "$@"; do
  case $a in
    --no-build) no_build=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu-prepare: unknown argument '$a'" >&2; exit 2 ;;
  esac
done

human() { numfmt --to=iec-i --suffix=B "$1"; }

# ---- 1. build ----
if [ "$no_build" = 0 ]; then
  echo "== build: CUDA for sm_90 into $build/ =="
  # Without MPI (and so without NCCL): the GPU machine lent has one GPU and no MPI launcher, and NCCL alone
  # would be a quarter-gigabyte library to carry (docs/distributed.md says what a multi-GPU check needs).
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMPNCOV_CUDA=ON -DMPNCOV_CUDA_ARCHS=90 \
    -DMPNCOV_TESTS=ON -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON >/dev/null
  cmake --build "$build" --parallel "${MPNCOV_JOBS:-2}" --target "${programs[@]}"
fi
for p in "${programs[@]}"; do
  [ -x "$build/$p" ] || { echo "gpu-prepare: $build/$p is missing (build it first)" >&2; exit 1; }
done
grep -q '^MPNCOV_CUDA_ARCHS:STRING=90$' "$build/CMakeCache.txt" ||
  { echo "gpu-prepare: $build is not configured for sm_90 alone" >&2; exit 1; }
# No cuobjdump here (the GPU check lists the binary's GPU code there): check the flags and the section.
grep -q 'arch=compute_90,code=\[compute_90,sm_90\]' "$build/build.ninja" ||
  { echo "gpu-prepare: $build does not compile sm_90 code" >&2; exit 1; }
readelf -S "$build/mpncov" | grep -q '\.nv_fatbin' || { echo "gpu-prepare: no GPU code in $build/mpncov" >&2; exit 1; }

# ---- 2. programs ----
rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/lib" "$dest/fallback" "$dest/photos"
for p in "${programs[@]}"; do strip -o "$dest/bin/$p" "$build/$p"; done

# ---- 3. libraries ----
# On the GPU machine: the C library and loader, libstdc++/libgcc_s (fallback copies kept), the driver,
# and CUDA 13's runtime, cuBLAS, cuFFT and cuDNN 9 (PyTorch's packages).
system_re='^(linux-vdso|ld-linux-x86-64|libc|libm|libpthread|libdl|librt|libutil|libresolv)\.so'
fallback_re='^(libstdc\+\+|libgcc_s)\.so'
cuda_re='^(libcuda|libcudart|libcublas|libcublasLt|libcudnn[a-z_]*|libcufft|libcufftw|libcurand|libcusolver|libcusparse|libnvrtc|libnvJitLink|libnvToolsExt)\.so'
declare -A carried=() provided=()
for p in "${programs[@]}"; do
  while read -r name _ path _; do
    [ -n "$name" ] || continue
    if [[ $name =~ $system_re ]]; then provided[$name]=system
    elif [[ $name =~ $cuda_re ]]; then provided[$name]=cuda
    elif [[ $name =~ $fallback_re ]]; then provided[$name]=system; cp -L "$path" "$dest/fallback/$name"
    elif [ "$path" = "not" ]; then echo "gpu-prepare: $p needs $name, which is not found here" >&2; exit 1
    else carried[$name]=$path; cp -L "$path" "$dest/lib/$name"
    fi
  done < <(ldd "$build/$p" | sed -n 's/^[[:space:]]*\([^ ]*\) => \([^ ]*\).*/\1 => \2 x/p')
done
strip --strip-unneeded "$dest"/lib/* "$dest"/fallback/* 2>/dev/null || true

# ---- 4. photographs and manifest ----
n_photos=0
for f in "${photos[@]}"; do
  if [ -f "$photos_src/$f" ]; then cp "$photos_src/$f" "$dest/photos/"; n_photos=$((n_photos + 1)); fi
done
[ "$n_photos" -gt 0 ] || echo "gpu-prepare: warning: no photographs in $photos_src (apt-get install mate-backgrounds);" \
  "the loader stage will be skipped"

needed_glibc=$(objdump -T "$dest"/bin/* "$dest"/lib/* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
needed_cxx=$(objdump -T "$dest"/bin/* "$dest"/lib/* 2>/dev/null | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)
sonames=$(for p in "${programs[@]}"; do readelf -d "$build/$p" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; done | sort -u |
  tr '\n' ' ')
{
  echo "# written by scripts/gpu-prepare.sh; read by scripts/gpu-check.sh"
  echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo +dirty)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "source_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")"
  echo "binary_dir=$root/$build"
  echo "cuda=$(/usr/local/cuda/bin/nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
  echo "cudnn=$(awk '/define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{printf "%s%s", s, $3; s="."}' \
    /usr/local/cuda/include/cudnn_version.h 2>/dev/null)"
  echo "needed_sonames=$sonames"
  echo "needed_glibc=$needed_glibc"
  echo "needed_glibcxx=$needed_cxx"
  echo "from_gpu_machine=$(printf '%s\n' "${!provided[@]}" | sort | tr '\n' ' ')"
} > "$dest/MANIFEST"

# ---- 5. checks ----
echo
echo "== gathered into $dest/ =="
(cd "$dest" && find . -type f -printf '%s %p\n' | sort -k2 | while read -r s f; do printf '  %10s  %s\n' "$(human "$s")" "$f"; done)
echo "  provided by the GPU machine: ${!provided[*]}"
echo "  binaries need glibc up to $needed_glibc and libstdc++ up to $needed_cxx"

echo
echo "== resolution with LD_LIBRARY_PATH=$dest/lib (every library must come from there or the allowed set) =="
bad=0
for p in "${programs[@]}"; do
  while read -r name _ path _; do
    if [[ $name =~ $system_re || $name =~ $fallback_re || $name =~ $cuda_re ]]; then continue; fi
    case $path in
      "$root/$dest/lib/"*) ;;
      *) echo "  $p: $name resolves to $path, not $dest/lib" >&2; bad=1 ;;
    esac
  done < <(env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$root/$dest/lib" ldd "$dest/bin/$p" |
           sed -n 's/^[[:space:]]*\([^ ]*\) => \([^ ]*\).*/\1 => \2 x/p')
done
[ "$bad" = 0 ] || { echo "gpu-prepare: some libraries do not resolve from $dest/lib" >&2; exit 1; }
echo "  ok: every library outside glibc, libstdc++ and CUDA resolves from $dest/lib"
# Stronger, where this machine allows mount namespaces: hide the system copies of the carried libraries
# behind empty files and run the carried program.
if unshare -m true 2>/dev/null; then
  hide=""
  for name in "${!carried[@]}"; do
    for f in "${carried[$name]}" "$(readlink -f "${carried[$name]}")"; do hide+="mount --bind /dev/null '$f'; "; done
  done
  if out=$(unshare -m sh -c "$hide env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH='$root/$dest/lib' '$dest/bin/mpncov' info" 2>&1)
  then echo "  ok: with the system copies hidden, the carried mpncov runs: $(echo "$out" | tail -1)"
  else echo "$out" >&2; echo "gpu-prepare: the carried mpncov fails with the system copies hidden" >&2; exit 1
  fi
else
  echo "  (no mount namespace here: the hidden-system-copies run is skipped)"
fi

# ---- 6. pack ----
rm -rf "$pack"
mkdir -p "$pack"
XZ_OPT="-6 -T${MPNCOV_JOBS:-2}" tar -C "$dest" -cJf "$pack/payload.tar.xz" .
cp "$dest/MANIFEST" "$pack/MANIFEST"
tree_bytes=$(git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
carry_bytes=$(du -sb "$pack" | cut -f1)
total=$((tree_bytes + carry_bytes))
echo
echo "== size: $dest $(human "$(du -sb "$dest" | cut -f1)") packed into $pack/payload.tar.xz;" \
  "working tree $(human "$tree_bytes") + $pack $(human "$carry_bytes") = $(human "$total") (limit $(human $limit)) =="
[ "$total" -lt "$limit" ] || { echo "gpu-prepare: over the device tool's limit" >&2; exit 1; }
echo "ready: run scripts/gpu-check.sh \"\$OUT\" on the GPU machine with carry [\"$pack\"] (docs/gpu.md)"

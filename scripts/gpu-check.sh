#!/usr/bin/env bash
# The one-call GPU check (docs/gpu.md): runs on the GPU machine over the programs and libraries that
# scripts/gpu-prepare.sh packed into .gpu-libs/payload.tar.xz (carried there), in about 8 minutes:
#   env             the GPU, driver, PyTorch, where the CUDA libraries were found, `mpncov info`
#   tests           the GPU test suite (every op and layer on the GPU against the CPU) under MPNCOV_CUDA_SYNC=1
#                   (every op synchronises and checks: a kernel fault names its op)
#   sanitizer       compute-sanitizer memcheck, racecheck and synccheck over a small GPU test subset
#   conv            cuDNN convolutions against the CPU in float64, TF32 off and on, with the algorithm,
#                   math type and workspace chosen for each shape
#   determinism     a ResNet stem forward and backward twice under MPNCOV_CUDA_DETERMINISTIC: the same bits
#   large           reductions, per-channel ops and im2col on tensors above 2^31 elements
#   epochs          2 epochs of `mpncov quickstart` with CBP and another validation batch size, every pinned
#                   batch's device copy checked against the host's, allocator counters across epochs
#   gradcheck       `mpncov gradcheck --all-layers --device cuda`
#   train           the same small covariance net trained on CPU and GPU from the same weights and batches:
#                   the losses must agree within 1e-3 (relative, per step; full FP32 on the GPU)
#   rep             iSQRT-COV forward+backward at (128,256,28,28) and (32,256,14,14), ours against the
#                   seed's code in PyTorch
#   step            resnet50 / mpncov_resnet50 training steps: images/s and cudaMalloc calls in warmed-up steps
#   step-torch      the same in PyTorch (TF32 on/off, NCHW and channels-last)
#   bf16            resnet50 training steps at batch 128 in tf32 and bfloat16 (`mpncov time --precision`),
#                   against PyTorch's bfloat16 autocast (AMP); the bf16 GPU tests run in the tests stage
#   quickstart      `mpncov quickstart --epochs 2` on cuda and on cpu: the losses of metrics.csv compared
#   gradcheck-nets  `mpncov gradcheck NET --device cuda` over the zoo, once the command takes nets
#   loader          our loader's images/s with the machine's cores, against the step's rate
# Stages are independent: each has a time limit and a verdict, and one failing does not stop the rest.
# Reports in OUT_DIR (at most 8 files, as the device tool returns): summary.md (the table printed at the
# end), results.txt (every figure, one "RESULT ..." line each), all.log (the whole output), stages.tar.gz
# (one log per stage and status.tsv).
#
# usage: scripts/gpu-check.sh [--dry-run] OUT_DIR
#   --dry-run   every stage on the CPU with tiny sizes (for checking this script where there is no GPU)
# environment: MPNCOV_GPU_BUDGET (seconds for all stages, default 450), MPNCOV_PYTHON (a python3 with
#   PyTorch; default: the first of python3, /usr/bin/python3 that imports torch),
#   MPNCOV_GPU_STAGES (names of the stages to run, e.g. "env tests"; default all),
#   MPNCOV_GPU_QUICKSTART_ARGS (extra arguments for the quickstart stage), MPNCOV_GPU_KEEP=1 (keep the work folder)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
DRY=0
OUT_DIR=""
for a in "$@"; do
  case $a in
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    -*) echo "gpu-check: unknown option '$a'" >&2; exit 2 ;;
    *) OUT_DIR=$a ;;
  esac
done
[ -n "$OUT_DIR" ] || { echo "usage: scripts/gpu-check.sh [--dry-run] OUT_DIR" >&2; exit 2; }
mkdir -p "$OUT_DIR" && OUT_DIR=$(cd "$OUT_DIR" && pwd)
BUDGET=${MPNCOV_GPU_BUDGET:-450}
START=$(date +%s)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mpncov-gpu-check.XXXXXX")
mkdir -p "$WORK/stages"
: > "$OUT_DIR/results.txt"
: > "$WORK/status.tsv"
exec > >(tee "$OUT_DIR/all.log") 2>&1
TEE_PID=$!

if [ "$DRY" = 1 ]; then DEV=cpu; else DEV=cuda; fi
echo "mpncov gpu-check: $( [ "$DRY" = 1 ] && echo 'DRY RUN, every stage on the cpu' || echo 'on the GPU') in $ROOT," \
  "budget ${BUDGET}s, reports in $OUT_DIR"

# ---- unpack the programs and libraries (into the work folder: .gpu-libs stays as small as it travels) ----
payload=$ROOT/.gpu-libs/payload.tar.xz
LIBS=$WORK/gpu-libs
BIN=$LIBS/bin
if [ ! -f "$payload" ]; then
  echo "gpu-check: $payload is missing: run scripts/gpu-prepare.sh here and carry .gpu-libs" >&2
  exit 1
fi
mkdir -p "$LIBS"
if ! tar -C "$LIBS" -xJf "$payload" 2>/dev/null; then
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$payload" "$LIBS" ||
    { echo "gpu-check: cannot unpack $payload" >&2; exit 1; }
fi
echo "unpacked $(du -sh "$LIBS" | cut -f1) from .gpu-libs/payload.tar.xz ($(sed -n 's/^commit=//p' "$LIBS/MANIFEST"), built" \
  "$(sed -n 's/^built=//p' "$LIBS/MANIFEST"))"

# ---- python with PyTorch (the peer of the benchmarks; the oracle of some tests) ----
PY=${MPNCOV_PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3 /usr/bin/python3; do
    if "$c" -c 'import torch' 2>/dev/null; then PY=$(command -v "$c"); break; fi
  done
fi
[ -n "$PY" ] || { PY=python3; echo "gpu-check: warning: no python3 with PyTorch found; PyTorch stages will fail"; }

# ---- where the CUDA 13 / cuDNN 9 libraries are: PyTorch's nvidia-* packages, then the toolkit ----
cuda_dirs=()
while read -r sp; do
  [ -d "$sp/nvidia" ] || continue
  while read -r d; do cuda_dirs+=("$d"); done < <(find "$sp/nvidia" -maxdepth 4 -name 'lib*.so*' -printf '%h\n' | sort -u)
done < <("$PY" - 2>/dev/null <<'EOF'
import os, site
roots = list(site.getsitepackages())
try:
    import torch
    roots.append(os.path.dirname(os.path.dirname(torch.__file__)))
except Exception:
    pass
seen = set()
for r in roots:
    if r not in seen:
        seen.add(r)
        print(r)
EOF
)
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib; do
  [ -d "$d" ] && cuda_dirs+=("$d")
done
OURS_LD=$LIBS/lib
for d in "${cuda_dirs[@]}"; do OURS_LD+=":$d"; done
[ -n "${LD_LIBRARY_PATH:-}" ] && OURS_LD+=":$LD_LIBRARY_PATH"
# libstdc++/libgcc_s from the build machine only when the system's are too old for our programs.
if LD_LIBRARY_PATH=$OURS_LD "$BIN/mpncov" --help 2>&1 >/dev/null | grep -q "GLIBCXX\|CXXABI\|GCC_[0-9]"; then
  OURS_LD=$LIBS/fallback:$OURS_LD
  echo "gpu-check: the system libstdc++ is too old for our programs: using the payload's fallback/"
fi

# ---- the compiled-in source and build folders (tests find their oracle scripts and mpncov there) ----
src_dir=$(sed -n 's/^source_dir=//p' "$LIBS/MANIFEST")
bin_dir=$(sed -n 's/^binary_dir=//p' "$LIBS/MANIFEST")
if [ -n "$src_dir" ] && [ "$(readlink -f "$src_dir")" != "$(readlink -f "$ROOT")" ]; then
  if [ ! -e "$src_dir" ]; then
    mkdir -p "$(dirname "$src_dir")" && ln -s "$ROOT" "$src_dir" && echo "gpu-check: linked $src_dir -> $ROOT"
  else
    echo "gpu-check: warning: $src_dir exists and is not this checkout: tests that read it may fail"
  fi
fi
if [ -n "$bin_dir" ]; then
  mkdir -p "$bin_dir" 2>/dev/null
  for p in "$BIN"/*; do
    link=$bin_dir/$(basename "$p")
    if [ -L "$link" ] || [ ! -e "$link" ]; then ln -sfn "$p" "$link"; fi  # a real build there stays
  done
fi

export ROOT DRY DEV OUT_DIR WORK BIN LIBS PY OURS_LD

# Runs one of our programs with our libraries; other programs (PyTorch) keep the machine's environment.
ours() { env LD_LIBRARY_PATH="$OURS_LD" MPNCOV_PYTHON="$PY" MPNCOV_ZOO="$ROOT/nets/zoo" OMP_WAIT_POLICY=PASSIVE "$@"; }
# The stage's verdict: pass, FAIL, skip; a note for the table.
verdict() { printf '%s\t%s\n' "$1" "$2" > "$WORK/verdict"; }
export -f ours verdict

# ---- the stages ----
stage_env() {
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi -L
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
      --format=csv
  else
    echo "nvidia-smi: not present"
  fi
  echo "host: $(uname -srm); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"); $(ldd --version | head -1);" \
    "$(nproc) cores; $(awk '/MemTotal/{printf "%.0f", $2 / 1048576}' /proc/meminfo) GiB"
  echo "python: $PY"
  "$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn",
torch.backends.cudnn.version(), "torchvision", torchvision.__version__, "gpu", torch.cuda.is_available())' ||
    echo "PyTorch: not importable"
  echo "--- the payload's MANIFEST"
  cat "$LIBS/MANIFEST"
  echo "--- LD_LIBRARY_PATH for our programs: $OURS_LD"
  local missing=0 p
  for p in "$BIN"/*; do
    echo "$(basename "$p"):"
    ours ldd "$p" | grep -E "not found|cud|cublas|cufft|gpu-libs" | sed 's/ (0x[0-9a-f]*)//'
    ours ldd "$p" | grep -q "not found" && missing=1
  done
  if command -v cuobjdump > /dev/null; then
    echo "GPU code in mpncov: $(cuobjdump --list-elf "$BIN/mpncov" 2>/dev/null | grep -o 'sm_[0-9a-z]*' | sort -u | tr '\n' ' ')"
  fi
  echo "---"
  local info
  info=$(ours "$BIN/mpncov" info 2>&1)
  echo "$info"
  if [ "$missing" = 1 ]; then verdict FAIL "a library is not found (see ldd above)"
  elif ! echo "$info" | grep -q "^backends"; then verdict FAIL "mpncov info failed"
  elif [ "$DRY" = 0 ] && ! echo "$info" | grep -q "device(s)"; then verdict FAIL "mpncov sees no CUDA device"
  else verdict pass "$(echo "$info" | sed -n 's/^backends: .*cuda: //p' | cut -c1-70)"
  fi
}

# Runs mpncov_tests with the given doctest arguments and sets the verdict: every selected test ran (none
# skipped) and passed; in a dry run, they must all have been skipped.
doctest_verdict() {
  local out rc
  out=$(ours "$BIN/mpncov_tests" "$@" 2>&1); rc=$?
  echo "$out"
  local counts
  counts=$(echo "$out" | grep -o 'test cases: .*' | tail -1 | tr -s ' ')
  if [ "$DRY" = 1 ]; then
    if echo "$out" | grep -q "SKIPPED"; then verdict skip "no GPU here: ${counts:-none ran}"; else verdict FAIL "expected skips"; fi
  elif [ "$rc" = 0 ] && ! echo "$out" | grep -q "SKIPPED"; then verdict pass "$counts"
  else verdict FAIL "rc $rc: ${counts:-no summary}"
  fi
}

stage_tests() {
  # The convolution sweep and the large tensors have stages of their own.
  MPNCOV_CUDA_SYNC=1 doctest_verdict -ts=gpu -tce='cuda conv*'
}

stage_sanitizer() {
  local cs
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
  if [ "$DRY" = 1 ]; then verdict skip "no GPU here"; return; fi
  if [ -z "$cs" ]; then echo "compute-sanitizer: not on this machine"; verdict skip "no compute-sanitizer"; return; fi
  # A few small cases that cover the hand-written kernels: elementwise, reductions, pooling, FFT.
  local subset='cuda: unary*,cuda: binary*,cuda: reductions*,cuda pooling*,cuda reductions*,cuda fft: irfft*'
  local tool failed=0 ran="" rc
  for tool in memcheck racecheck synccheck; do
    echo "--- compute-sanitizer --tool $tool"
    ours "$cs" --tool "$tool" --error-exitcode 99 "$BIN/mpncov_tests" -ts=gpu -tc="$subset" > "$WORK/sanitizer.out" 2>&1
    rc=$?
    tail -25 "$WORK/sanitizer.out"
    if [ "$rc" = 0 ]; then ran+="$tool "; else failed=$((failed + 1)); ran+="$tool(rc $rc) "; fi
  done
  if [ "$failed" = 0 ]; then verdict pass "$ran"; else verdict FAIL "$ran"; fi
}

stage_conv() {
  doctest_verdict -ts=gpu -tc='cuda conv: every*,cuda conv: with TF32*'
}

stage_determinism() {
  MPNCOV_CUDA_DETERMINISTIC=1 doctest_verdict -ts=gpu -tc='cuda conv: a ResNet stem*'
}

stage_large() {
  doctest_verdict -ts=gpu-large
}

stage_epochs() {
  # Pinned batches copied asynchronously, CBP's FFT plans (partial chunks, the validation batch size),
  # 2 epochs; MPNCOV_CHECK_BATCH_COPIES=1 prints one "batch_copy" line per copy when its batch goes.
  local epochs=2 rc
  [ "$DRY" = 1 ] && epochs=1
  MPNCOV_CHECK_BATCH_COPIES=1 ours "$BIN/mpncov" quickstart --out "$WORK/epochs" --epochs "$epochs" --quiet \
    --representation cbp --set "run.device=$DEV" --set data.val_batch=7 > "$WORK/epochs.out" 2>&1; rc=$?
  sed 's/^RESULT batch_copy /batch_copy /' "$WORK/epochs.out" | tail -60
  [ "$rc" = 0 ] || { verdict FAIL "rc $rc"; return; }
  [ "$DRY" = 1 ] && { verdict pass "ran on cpu (dry run: no device copies)"; return; }
  local copies bad m0 m1
  copies=$(grep -c '^RESULT batch_copy ' "$WORK/epochs.out")
  bad=$(grep '^RESULT batch_copy ' "$WORK/epochs.out" | grep -vc ' match=1 ')
  # The allocator's cudaMalloc count after each epoch's last batch (training then validation): the second
  # epoch must need none.
  m0=$(grep '^RESULT batch_copy epoch=0 ' "$WORK/epochs.out" | tail -1 | grep -o 'device_mallocs=[0-9]*' | cut -d= -f2)
  m1=$(grep '^RESULT batch_copy epoch=1 ' "$WORK/epochs.out" | tail -1 | grep -o 'device_mallocs=[0-9]*' | cut -d= -f2)
  echo "RESULT epochs copies=$copies mismatches=$bad mallocs_epoch0=${m0:-none} mallocs_epoch1=${m1:-none}"
  if [ "$copies" = 0 ]; then verdict FAIL "no batch copy was checked"
  elif [ "$bad" != 0 ]; then verdict FAIL "$bad of $copies device copies differ from the host's"
  elif [ -z "$m0" ] || [ -z "$m1" ] || [ "$m0" != "$m1" ]; then verdict FAIL "cudaMalloc in epoch 2: ${m0:-?} -> ${m1:-?}"
  else verdict pass "$copies copies match; no cudaMalloc in epoch 2 ($m1 in all)"
  fi
}

stage_gradcheck() {
  local out rc
  out=$(ours "$BIN/mpncov" gradcheck --all-layers --device "$DEV" 2>&1); rc=$?
  echo "$out"
  local last
  last=$(echo "$out" | tail -1)
  if [ "$rc" = 0 ]; then verdict pass "$last"; else verdict FAIL "rc $rc: $last"; fi
}

stage_train() {
  # Full FP32 on the GPU (no TF32 in cuDNN or cuBLAS), so the losses can follow the CPU's closely.
  local out rc
  out=$(NVIDIA_TF32_OVERRIDE=0 ours "$BIN/gpu_bench" compare --net "$ROOT/bench/gpu/small_mpncov.yaml" \
        --device "$DEV" --steps 20 --batch 8 --size 32 --tolerance 1e-3 2>&1); rc=$?
  echo "$out"
  local r
  r=$(echo "$out" | grep '^RESULT compare' | grep -o 'max_rel_diff=[^ ]*')
  if [ "$rc" = 0 ]; then verdict pass "20 steps, $r (tolerance 1e-3)"; else verdict FAIL "rc $rc: ${r:-no result}"; fi
}

stage_rep() {
  local shapes=(128x256x28x28 32x256x14x14) reps=5 rc1 rc2
  [ "$DRY" = 1 ] && shapes=(4x32x8x8 2x16x7x7) && reps=2
  ours "$BIN/gpu_bench" rep --device "$DEV" --iterations 5 --reps "$reps" "${shapes[@]}"; rc1=$?
  "$PY" "$ROOT/bench/gpu/torch_isqrt.py" --device "$DEV" --iterations 5 --reps "$reps" "${shapes[@]}"; rc2=$?
  if [ "$rc1" = 0 ] && [ "$rc2" = 0 ]; then verdict pass "ours and PyTorch ran"; else verdict FAIL "rc ours $rc1, torch $rc2"; fi
}

stage_step() {
  local runs=() failed=0 arch batch math
  if [ "$DRY" = 1 ]; then runs=("resnet50 2 tf32" "mpncov_resnet50 2 fp32"); else
    runs=("resnet50 64 tf32" "resnet50 128 tf32" "mpncov_resnet50 64 tf32" "mpncov_resnet50 128 tf32"
          "resnet50 128 fp32" "mpncov_resnet50 128 fp32"); fi
  local size=224 warmup=3 steps=10
  [ "$DRY" = 1 ] && size=64 warmup=1 steps=1
  for r in "${runs[@]}"; do
    read -r arch batch math <<< "$r"
    echo "--- $arch (nets/zoo), batch $batch, $math"
    # Our default is FP32 everywhere; MPNCOV_CUDA_TF32=1 lets cuDNN's convolutions use TF32 (cuBLAS stays
    # FP32), and NVIDIA_TF32_OVERRIDE=0 forbids TF32 in the libraries whatever we ask.
    local run=(ours "$BIN/gpu_bench" step --net "$arch" --device "$DEV" --batch "$batch" --size "$size"
               --warmup "$warmup" --steps "$steps")
    if [ "$math" = fp32 ]; then NVIDIA_TF32_OVERRIDE=0 "${run[@]}"; else MPNCOV_CUDA_TF32=1 "${run[@]}"; fi > "$WORK/step.out" 2>&1 ||
      failed=$((failed + 1))
    sed "s/^RESULT step /RESULT step math=$math /" "$WORK/step.out" | tee -a "$WORK/step.all"
  done
  # Where the time goes, layer by layer (mpncov time), for the work after this check.
  echo "--- mpncov time mpncov_resnet50"
  if [ "$DRY" = 1 ]; then
    ours "$BIN/mpncov" time mpncov_resnet50 --device "$DEV" --batch 1 --input 3x64x64 --iterations 1 | tail -15
  else
    ours "$BIN/mpncov" time mpncov_resnet50 --device "$DEV" --batch 64 --iterations 5
  fi
  local mallocs
  mallocs=$(grep -o 'mallocs_timed=[0-9]*' "$WORK/step.all" 2>/dev/null | sort -u | tr '\n' ' ')
  if [ "$failed" != 0 ]; then verdict FAIL "$failed of ${#runs[@]} runs failed"
  elif grep -q 'mallocs_timed=[1-9]' "$WORK/step.all"; then verdict FAIL "cudaMalloc in warmed-up steps: $mallocs"
  else verdict pass "${#runs[@]} runs; ${mallocs:-no counters}"
  fi
}

stage_step_torch() {
  local args=() rc
  [ "$DRY" = 1 ] && args=(--size 64 --configs "2/tf32/nchw,2/fp32/nhwc" --warmup 1 --steps 1)
  "$PY" "$ROOT/bench/gpu/torch_step.py" --device "$DEV" "${args[@]}"; rc=$?
  if [ "$rc" = 0 ]; then verdict pass "torch $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
  else verdict FAIL "rc $rc"; fi
}

stage_bf16() {
  local batch=128 iterations=10 input=() failed=0 p line torch_args=()
  if [ "$DRY" = 1 ]; then
    batch=2 iterations=1 input=(--input 3x64x64)
    torch_args=(--size 64 --warmup 1 --steps 1)
  fi
  for p in tf32 bfloat16; do
    echo "--- mpncov time resnet50 --batch $batch --precision $p"
    ours "$BIN/mpncov" time resnet50 --device "$DEV" --batch "$batch" --iterations "$iterations" "${input[@]}" \
      --precision "$p" > "$WORK/bf16.out" 2>&1 || failed=$((failed + 1))
    tail -3 "$WORK/bf16.out"
    line=$(sed -n 's/^training step: \([0-9.]*\) ms per batch of [0-9]* (\([0-9.]*\) images\/s).*/step_ms=\1 images_per_s=\2/p' \
      "$WORK/bf16.out")
    echo "RESULT bf16_step arch=resnet50 batch=$batch precision=$p ${line:-error=no_result}"
  done
  "$PY" "$ROOT/bench/gpu/torch_step.py" --device "$DEV" --archs resnet50 "${torch_args[@]}" \
    --configs "$batch/tf32/nchw,$batch/bf16/nchw,$batch/bf16/nhwc" || failed=$((failed + 1))
  if [ "$failed" = 0 ]; then verdict pass "ours and PyTorch ran"; else verdict FAIL "$failed runs failed"; fi
}

stage_gradcheck_nets() {
  local nets=() f
  # Every net of the zoo (files with layers; resnet_blocks.yaml holds blocks only), smallest file first.
  while read -r f; do grep -q '^features:' "$f" && nets+=("$f"); done < <(ls -Sr "$ROOT"/nets/zoo/*.yaml 2>/dev/null)
  if [ "${#nets[@]}" = 0 ]; then verdict skip "no zoo nets in nets/zoo yet"; echo "no zoo nets in nets/zoo"; return; fi
  local probe
  probe=$(ours "$BIN/mpncov" gradcheck "${nets[0]}" --device "$DEV" --batch 2 2>&1 | head -5)
  if echo "$probe" | grep -q "not available yet\|unknown option"; then
    echo "$probe"; verdict skip "mpncov gradcheck does not take whole nets yet"; return
  fi
  [ "$DRY" = 1 ] && nets=("${nets[@]:0:3}")
  local failed=0 checked=0 left extra=()
  [ "$DRY" = 1 ] && extra=(--max-elements 2)
  for f in "${nets[@]}"; do
    left=$((STAGE_DEADLINE - $(date +%s)))
    [ "$left" -gt 5 ] || break  # out of time: report how far it got rather than time out
    echo "--- $f"
    timeout -k 5 "$left" env LD_LIBRARY_PATH="$OURS_LD" MPNCOV_ZOO="$ROOT/nets/zoo" OMP_WAIT_POLICY=PASSIVE \
      "$BIN/mpncov" gradcheck "$f" --device "$DEV" --batch 2 "${extra[@]}" || failed=$((failed + 1))
    checked=$((checked + 1))
  done
  local what="$checked of ${#nets[@]} nets checked"
  if [ "$failed" = 0 ]; then verdict pass "$what"; else verdict FAIL "$what, $failed failed (or ran out of time)"; fi
}

stage_quickstart() {
  if ! ours "$BIN/mpncov" quickstart --help > /dev/null 2>&1; then
    echo "mpncov has no quickstart command yet"; verdict skip "no mpncov quickstart yet"; return
  fi
  local d rc=0 epochs=2
  [ "$DRY" = 1 ] && epochs=1
  # Full FP32 on the GPU, as in the train stage; the same seed, data and batches on both devices.
  # shellcheck disable=SC2086  # the extra arguments are words
  for d in "$DEV" cpu; do
    NVIDIA_TF32_OVERRIDE=0 ours "$BIN/mpncov" quickstart --out "$WORK/quickstart-$d" --epochs "$epochs" --quiet \
      --set "run.device=$d" ${MPNCOV_GPU_QUICKSTART_ARGS:-} || rc=$?
    [ "$DRY" = 1 ] && break
  done
  [ "$rc" = 0 ] || { verdict FAIL "rc $rc"; return; }
  [ "$DRY" = 1 ] && { verdict pass "ran on cpu (dry run: no comparison)"; return; }
  local a b
  a=$(find "$WORK/quickstart-$DEV" -name metrics.csv | head -1)
  b=$(find "$WORK/quickstart-cpu" -name metrics.csv | head -1)
  if [ -z "$a" ] || [ -z "$b" ]; then verdict FAIL "no metrics.csv to compare"; return; fi
  local cmp
  cmp=$("$PY" "$ROOT/bench/gpu/summarize.py" --compare-metrics "$b" "$a" 2e-2); rc=$?
  echo "$cmp"
  if [ "$rc" = 0 ]; then verdict pass "$cmp"; else verdict FAIL "$cmp"; fi
}

stage_loader() {
  if ! ls "$LIBS"/photos/*.jpg > /dev/null 2>&1; then verdict skip "no photographs in the payload's photos/"; return; fi
  local count=1024 seconds=2 cores
  cores=$(nproc)
  local workers="$((cores / 2 > 0 ? cores / 2 : 1))"
  [ "$cores" -gt 2 ] && workers+=",$((cores - 1))"
  [ "$DRY" = 1 ] && count=64 seconds=0.5
  "$PY" "$ROOT/bench/gpu/loader_images.py" "$LIBS/photos" "$WORK/images" "$count" ||
    { verdict FAIL "could not make the images"; return; }
  ours "$BIN/loader_bench" --images "$WORK/images" --no-torch --rounds 1 --seconds "$seconds" --workers "$workers" \
    > "$WORK/loader.out" 2>&1
  local rc=$?
  cat "$WORK/loader.out"
  # "| loader, train, batch 64, 15 workers | 5234 | | |" -> a RESULT line
  sed -n 's/^| loader, train, batch \([0-9]*\), \([0-9]*\) workers\{0,1\} | \([0-9.]*\) |.*/RESULT loader batch=\1 workers=\2 images_per_s=\3/p' \
    "$WORK/loader.out"
  if [ "$rc" = 0 ]; then verdict pass "workers $workers of $cores cores"; else verdict FAIL "rc $rc"; fi
}
export -f doctest_verdict stage_sanitizer stage_conv stage_determinism stage_large stage_epochs
export -f stage_env stage_tests stage_gradcheck stage_train stage_rep stage_step stage_step_torch stage_bf16 \
  stage_gradcheck_nets stage_quickstart stage_loader

# stage NAME MAX_SECONDS MIN_SECONDS: runs stage_NAME with a time limit of MAX_SECONDS or what is left of
# the budget, skipped when less than MIN_SECONDS is left.
stage() {
  local name=$1 max=$2 min=$3 left limit began rc status note
  if [ -n "${MPNCOV_GPU_STAGES:-}" ] && [[ " $MPNCOV_GPU_STAGES " != *" $name "* ]]; then
    printf '%s\tskip\t0\t%s\n' "$name" "not selected (MPNCOV_GPU_STAGES)" >> "$WORK/status.tsv"
    return
  fi
  left=$((BUDGET - ($(date +%s) - START)))
  if [ "$left" -lt "$min" ]; then
    printf '%s\tskip\t0\t%s\n' "$name" "no time left (${left}s of the budget)" >> "$WORK/status.tsv"
    echo; echo "=== $name: skipped, ${left}s of the budget left ==="
    return
  fi
  limit=$((max < left ? max : left))
  export STAGE_DEADLINE=$(($(date +%s) + limit - 5))  # for stages that pace themselves
  echo; echo "=== $name (limit ${limit}s) ==="
  rm -f "$WORK/verdict"
  began=$(date +%s)
  timeout -k 10 "$limit" bash -c "stage_${name//-/_}" 2>&1 | tee "$WORK/stages/$name.log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status=FAIL; note="timed out after ${limit}s"
  elif [ -f "$WORK/verdict" ]; then IFS=$'\t' read -r status note < "$WORK/verdict"
  elif [ "$rc" = 0 ]; then status=pass; note=""
  else status=FAIL; note="rc $rc"
  fi
  grep '^RESULT ' "$WORK/stages/$name.log" >> "$OUT_DIR/results.txt"
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(($(date +%s) - began))" "$note" >> "$WORK/status.tsv"
  tar czf "$OUT_DIR/stages.tar.gz" -C "$WORK" stages status.tsv 2>/dev/null
}

stage env 30 5
stage tests 150 20
stage sanitizer 90 30
stage conv 60 15
stage determinism 30 10
stage large 60 20
stage epochs 60 20
stage gradcheck 60 10
stage train 45 10
stage rep 60 15
stage step 110 30
stage step-torch 110 30
stage bf16 60 20
stage quickstart 90 30
stage gradcheck-nets 60 10
stage loader 40 15

echo
echo "=== summary ($(($(date +%s) - START))s) ==="
"$PY" "$ROOT/bench/gpu/summarize.py" "$WORK/status.tsv" "$OUT_DIR/results.txt" "$DRY" > "$OUT_DIR/summary.md" ||
  python3 "$ROOT/bench/gpu/summarize.py" "$WORK/status.tsv" "$OUT_DIR/results.txt" "$DRY" > "$OUT_DIR/summary.md"
cp "$WORK/status.tsv" "$OUT_DIR/status.tsv"
cat "$OUT_DIR/summary.md"
failed=$(awk -F'\t' '$2 == "FAIL"' "$WORK/status.tsv" | wc -l)
echo "gpu-check: $failed stage(s) failed; reports in $OUT_DIR"
[ "${MPNCOV_GPU_KEEP:-0}" = 1 ] || rm -rf "$WORK"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null
[ "$failed" = 0 ]

#!/usr/bin/env bash
# Peak resident memory of the resnet50 training step (batch 8, 224x224, 2 threads) in float32 and bfloat16,
# ours against PyTorch (float32, and bfloat16 autocast in NCHW and channels-last: bench/bf16_torch.py).
# Each figure is /usr/bin/time's maximum resident set size of a whole process that runs two warm-up steps and
# one timed step (forward, cross-entropy, backward, SGD). Run from the repository root after a build:
# bench/bf16_memory.sh [NET] [BATCH] (MPNCOV=path/to/mpncov for another build). Results: bench/RESULTS.md.
set -euo pipefail
net=${1:-resnet50}
batch=${2:-8}
mpncov=${MPNCOV:-build/mpncov}
export OMP_WAIT_POLICY=PASSIVE
peak() { grep "Maximum resident set size" | awk '{printf "%.0f MiB", $6 / 1024}'; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for precision in float32 bfloat16; do
  echo "mpncov $precision: peak $( { /usr/bin/time -v "$mpncov" time "$net" --batch "$batch" --iterations 1 \
    --threads 2 --precision "$precision" > /dev/null; } 2>&1 | peak)"
done
for variant in "float32 nchw" "bfloat16 nchw" "bfloat16 channels_last"; do
  # shellcheck disable=SC2086  # the variant is two words: precision and layout
  echo "PyTorch $variant: peak $( { /usr/bin/time -v /usr/bin/python3 bench/bf16_torch.py "$net" "$batch" 1 2 \
    $variant > /dev/null; } 2>&1 | peak)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

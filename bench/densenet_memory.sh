#!/usr/bin/env bash
# DenseNet-121 memory at batch 8, 224x224: the activation memory `mpncov inspect` counts, and the peak
# resident memory of training steps here and in PyTorch (memory_efficient off and on), one thread each.
# Run from the repository root after a build: bench/densenet_memory.sh [BATCH]. Results: bench/RESULTS.md.
set -euo pipefail
batch=${1:-8}
peak() { grep "Maximum resident set size" | awk '{printf "%.0f MiB", $6 / 1024}'; }
echo "mpncov inspect densenet121 --batch $batch:"
build/mpncov inspect densenet121 --batch "$batch" | tail -2
echo "mpncov, training steps:  peak $( { /usr/bin/time -v build/mpncov time densenet121 --batch "$batch" --iterations 2 \
  --threads 1 > /dev/null; } 2>&1 | peak)"
echo "mpncov, inference:       peak $( { /usr/bin/time -v build/mpncov time densenet121 --batch "$batch" --iterations 2 \
  --threads 1 --inference > /dev/null; } 2>&1 | peak)"
for efficient in 0 1; do
  out=$( { /usr/bin/time -v /usr/bin/python3 bench/densenet_memory_torch.py "$batch" "$efficient"; } 2>&1 )
  echo "PyTorch memory_efficient=$efficient: peak $(echo "$out" | peak) ($(echo "$out" | grep "resident before"))"
done

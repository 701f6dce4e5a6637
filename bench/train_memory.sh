#!/usr/bin/env bash
# Peak resident memory of the training step, ours against PyTorch (issue 20): for each net and batch,
# the plan `mpncov inspect` reports and /usr/bin/time's maximum resident set size of the whole process
# around `mpncov time` (two warm-up and two timed steps) and around the same PyTorch steps
# (bench/train_memory_torch.py; the interpreter and libraries count on its side).
# Run from the repository root after a build: bench/train_memory.sh [THREADS] [NETS] [BATCHES].
# Results: bench/RESULTS.md.
set -euo pipefail
threads=${1:-2}
nets=${2:-"resnet50 mpncov_resnet50"}
batches=${3:-"8 32"}
peak() { grep "Maximum resident set size" | awk '{printf "%.0f MiB", $6 / 1024}'; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for net in $nets; do
  for batch in $batches; do
    plan=$(build/mpncov inspect "$net" --batch "$batch" | tail -1 | sed 's/.*FLOPs per forward pass, //')
    ours=$( { /usr/bin/time -v build/mpncov time "$net" --batch "$batch" --iterations 2 --threads "$threads" \
      > /dev/null; } 2>&1 | peak)
    out=$( { /usr/bin/time -v /usr/bin/python3 bench/train_memory_torch.py "$net" "$batch" "$threads"; } 2>&1 )
    echo "$net batch $batch: ours peak $ours (plan: $plan); PyTorch peak $(echo "$out" | peak)" \
      "($(echo "$out" | grep "resident before"))"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

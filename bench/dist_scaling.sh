#!/usr/bin/env bash
# Data-parallel scaling on this machine (bench/RESULTS.md): for each net, 1 process x 1 thread against
# `mpirun -np 2` x 1 thread each (bucket overlap on, then off), interleaved over ROUNDS rounds so load
# changes hit every configuration alike. Prints each RESULT line, then per net the median images/s,
# the scaling efficiency (2-process images/s / (2 x 1-process images/s)) and the communication wait share.
#
#   bench/dist_scaling.sh [BUILD_DIR] [ROUNDS]      (environment: NETS, BATCH, SIZE, STEPS)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rounds=${2:-3}
nets=${NETS:-"resnet18 mpncov_resnet50"}
batch=${BATCH:-8}
size=${SIZE:-224}
steps=${STEPS:-4}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
common="--batch $batch --size $size --warmup 1 --steps $steps --threads 1"
log=$(mktemp)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  for net in $nets; do
    OMP_NUM_THREADS=1 "$build/dist_bench" --net "$net" $common | tee -a "$log"
    for overlap in 1 0; do
      mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS=1 -x OMP_WAIT_POLICY \
        "$build/dist_bench" --net "$net" $common --overlap "$overlap" | tee -a "$log"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$log" <<'PY'
import re, statistics, sys
rows = [dict(kv.split("=") for kv in line.split()[1:]) for line in open(sys.argv[1]) if line.startswith("RESULT")]
for net in dict.fromkeys(r["net"] for r in rows):
    def med(procs, overlap, key):
        v = [float(r[key]) for r in rows if r["net"] == net and r["procs"] == procs and (procs == "1" or r["overlap"] == overlap)]
        return statistics.median(v)
    one = med("1", "1", "images_per_s")
    on, off = med("2", "1", "images_per_s"), med("2", "0", "images_per_s")
    print(f"{net}: 1 process {one:.2f} img/s; 2 processes {on:.2f} img/s (overlap on, efficiency {on / (2 * one):.0%}, "
          f"comm wait {med('2', '1', 'comm_wait_share'):.0%} of the step), {off:.2f} img/s (overlap off, efficiency "
          f"{off / (2 * one):.0%}, comm wait {med('2', '0', 'comm_wait_share'):.0%})")
PY
rm -f "$log"

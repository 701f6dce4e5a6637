#!/usr/bin/env bash
# Crash soak: trains the quickstart experiment, kills it with SIGKILL again and again, resumes it each
# time, and checks that the final checkpoint's tensors (weights, batch-norm statistics, momentum
# buffers) equal those of an uninterrupted run bit for bit.
#
#   scripts/soak.sh [--kills N] [--epochs E] [--images K] [--mpncov PATH] [--dir DIR] [--seed S] [--set key=value]...
#
# Defaults: 20 kills, 16 epochs, K=30 images per class (a subset of the quickstart's textures, so an epoch
# takes seconds), build/mpncov, a fresh temporary folder (kept on failure). The kills cycle through three
# moments:
#   step        a random moment in the training steps of an epoch (after at least one finished epoch
#               since the resume, so the chain of resumes makes progress);
#   validation  after the last training step of an epoch, while it is being validated;
#   checkpoint  while a checkpoint is being written (as soon as its temporary file appears).
# Each kill is then classified by what the run folder shows (a temporary checkpoint left behind, the
# epoch's last step logged but not yet saved, or neither), and the counts are printed.
# Exit status: 0 when the weights match, 1 when they differ or a resume fails, 2 for a usage error.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kills=20 epochs=16 images=30 mpncov=$here/build/mpncov dir="" seed=$RANDOM
sets=()
while [ $# -gt 0 ]; do
  case $1 in
    --kills) kills=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --mpncov) mpncov=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    *) echo "soak.sh: unknown argument '$1' (see the comment at the top of the script)" >&2; exit 2 ;;
  esac
done
[ -x "$mpncov" ] || { echo "soak.sh: $mpncov not found (build first)" >&2; exit 2; }
mpncov=$(cd "$(dirname "$mpncov")" && pwd)/$(basename "$mpncov")
own_dir=0
[ -n "$dir" ] || { dir=$(mktemp -d /tmp/mpncov-soak.XXXXXX); own_dir=1; }
mkdir -p "$dir"
RANDOM=$seed
export OMP_WAIT_POLICY=PASSIVE
echo "soak: $kills kills, $epochs epochs, $images images per class, seed $seed, in $dir"

# The dataset: the quickstart's textures (made once), K images per class of train and val.
if [ ! -d "$dir/data/train" ]; then
  "$mpncov" quickstart --out "$dir/quickstart" --quiet --set solver.epochs=1 --set data.image_size=16 --set data.batch=100 \
    --set run.device=cpu >/dev/null  # the shortest training that makes the dataset
  for split in train val; do
    for class_dir in "$dir/quickstart/data/$split"/*/; do
      class=$(basename "$class_dir")
      mkdir -p "$dir/data/$split/$class"
      find "$class_dir" -type f | sort | awk -v n="$images" 'NR <= n' | xargs cp -t "$dir/data/$split/$class"
    done
  done
fi

common=(--set "data.train=$dir/data/train" --set "data.val=$dir/data/val" --set "solver.epochs=$epochs"
        --set "solver.schedule={type: step, milestones: [$((epochs / 2 + 1))]}" --set run.device=cpu
        --set run.threads=2 --set data.workers=2 --set run.print_every=1 --set data.val_batch=1 "${sets[@]}")
# (print_every 1 logs every step, which the kills watch; validating image by image makes it last long
# enough for a kill to land in it.)
train() {  # train OUT [--resume]: the command, run by the caller (so that $! is mpncov itself)
  cmd=("$mpncov" train "$here/experiments/quickstart.yaml" "${common[@]}" --set "run.out=$1" --quiet "${@:2}")
}

started=$SECONDS
train "$dir/reference"
"${cmd[@]}" >/dev/null
reference_seconds=$((SECONDS - started))
iterations=$(awk -F, 'NR > 1 && $1 == 1 {n = $2} END {print n}' "$dir/reference/iterations.csv")
echo "soak: uninterrupted run: ${reference_seconds}s, $iterations iterations per epoch"

out=$dir/soak
rm -rf "$out"
rows() { awk 'END {print NR}' "$out/iterations.csv" 2>/dev/null || echo 0; }
# The last row this run logged, and whether it is the last training step of an epoch.
last_row() { tail -n +"$((start_rows + 1))" "$out/iterations.csv" 2>/dev/null | tail -n 1; }
epoch_trained() { last_row | grep -qE "^[0-9]+,$iterations,"; }
checkpoint_mtime() { stat -c %Y.%y "$out/last.safetensors" 2>/dev/null || echo none; }
temp_checkpoint() { compgen -G "$out/*.safetensors.tmp.*" >/dev/null; }
declare -A landed=([step]=0 [validation]=0 [checkpoint]=0)
done_kills=0 resumes=0
while [ "$done_kills" -lt "$kills" ]; do
  resume=()
  [ -f "$out/last.safetensors" ] && resume=(--resume) && resumes=$((resumes + 1))
  rm -f "$out"/*.tmp.*  # what a kill during a write leaves behind
  start_rows=$(rows)
  train "$out" "${resume[@]}"
  "${cmd[@]}" >>"$dir/soak.stdout" 2>&1 &
  pid=$!
  saved=$(checkpoint_mtime)
  moment=$(( done_kills % 3 ))
  alive() { kill -0 "$pid" 2>/dev/null; }
  case $moment in
    0)  # step: after the next checkpoint (progress), a random step of the following epoch
      while alive && [ "$(checkpoint_mtime)" = "$saved" ]; do sleep 0.01; done
      target=$(( $(rows) + 1 + RANDOM % (iterations > 1 ? iterations - 1 : 1) ))
      while alive && [ "$(rows)" -lt "$target" ]; do sleep 0.005; done ;;
    1)  # validation: the epoch's last training step is logged
      while alive && ! epoch_trained; do sleep 0.002; done ;;
    2)  # checkpoint: a temporary checkpoint file exists (watched closely from the epoch's last step on)
      while alive && ! epoch_trained; do sleep 0.01; done
      while alive && ! temp_checkpoint; do :; done ;;
  esac
  if ! alive; then
    wait "$pid" && { echo "soak: FAILED: the run finished before kill $((done_kills + 1)) (use more --epochs)"; exit 1; }
    echo "soak: FAILED: the run exited with status $? (see $dir/soak.stdout)"; exit 1
  fi
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  done_kills=$((done_kills + 1))
  if temp_checkpoint; then at=checkpoint
  elif epoch_trained && [ "$(awk 'END {print NR - 1}' "$out/metrics.csv" 2>/dev/null || echo 0)" -lt "$(last_row | cut -d, -f1)" ]; then
    at=validation  # the epoch's last step is logged, its metrics are not
  else at=step; fi
  landed[$at]=$((landed[$at] + 1))
  echo "soak: kill $done_kills ($(printf '%s' "step validation checkpoint" | cut -d' ' -f$((moment + 1))) intended, landed in $at; last row: $(last_row))"
done
rm -f "$out"/*.tmp.*
# The last resume runs to the end; its metrics.csv must then hold every epoch (one run suffices: a resume
# writes the file again from the checkpoint's history, whatever a kill cut short).
resume=()
[ -f "$out/last.safetensors" ] && resume=(--resume) && resumes=$((resumes + 1))
train "$out" "${resume[@]}"
"${cmd[@]}" >>"$dir/soak.stdout" 2>&1 || { echo "soak: FAILED: resume failed (see $dir/soak.stdout)"; exit 1; }
logged=$(awk 'END {print NR - 1}' "$out/metrics.csv" 2>/dev/null || echo 0)
[ "$logged" -eq "$epochs" ] || { echo "soak: FAILED: the finished run's metrics.csv holds $logged of $epochs epochs"; exit 1; }
echo "soak: $done_kills kills (step ${landed[step]}, validation ${landed[validation]}, checkpoint ${landed[checkpoint]}), $resumes resumes"

# Every tensor of the final checkpoint, byte for byte (the metadata holds timings, so it is not compared).
/usr/bin/python3 - "$dir/reference/last.safetensors" "$out/last.safetensors" <<'EOF'
import json, struct, sys
def tensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in header.items()}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
bad = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
if bad:
    print(f"soak: FAILED: {len(bad)} of {len(a)} tensors differ from the uninterrupted run: {', '.join(bad[:5])}")
    sys.exit(1)
print(f"soak: passed: all {len(a)} tensors equal the uninterrupted run's bit for bit")
EOF
[ "$own_dir" = 0 ] || rm -rf "$dir"

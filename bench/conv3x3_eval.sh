#!/usr/bin/env bash
# Evaluation time of one float32 3x3 stride-1 layer (with its batch norm and ReLU folded in) under the
# default algorithm choice (`auto`: our F(7x7, 3x3) where its rule takes the layer) against
# MPNCOV_CONV_ALGORITHM=winograd (oneDNN's F(4x4, 3x3), or the one-axis F(7, 3) on 7x7 maps), the two
# alternating, three runs each. Each net is two such layers on a C x S x S input; the second one, whose input
# is already in the blocked layout as inside a network, is the one timed.
#
#   bench/conv3x3_eval.sh [MPNCOV] [CHANNELSxSIDExBATCH ...]
#   e.g. bench/conv3x3_eval.sh build-cpu/mpncov 512x14x8 256x14x8 128x28x8 512x7x32
set -euo pipefail
mpncov=${1:-build/mpncov}
shift || true
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(512x14x8 256x14x8 128x28x8 64x56x8 512x7x8 512x14x16 256x14x16 512x7x32 512x14x32 256x14x32)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
layer_ms() {  # NET BATCH [ALGORITHM]: the second layer's forward milliseconds
  MPNCOV_CONV_ALGORITHM=${3:-auto} "$mpncov" time "$1" --inference --batch "$2" --iterations 10 2>&1 |
    awk '$1 == "second" { print $3 }'
}
echo "| channels | side | batch | auto ms (3 runs) | winograd ms (3 runs) |"
echo "|---|---|---|---|---|"
for shape in "${shapes[@]}"; do
  IFS=x read -r c side batch <<<"$shape"
  net="$dir/conv3x3_${c}_${side}.yaml"
  cat >"$net" <<EOF
name: conv3x3_${c}_${side}
input: [$c, $side, $side]
features:
  - {name: first, type: conv, out_channels: $c, kernel_size: 3, padding: 1, bias: false}
  - {name: first_bn, type: batchnorm}
  - {name: first_relu, type: relu}
  - {name: second, type: conv, out_channels: $c, kernel_size: 3, padding: 1, bias: false}
  - {name: second_bn, type: batchnorm}
  - {name: second_relu, type: relu}
representation: {name: pool, type: gavp}
classifier:
  - {name: fc, type: linear, out_features: 10}
EOF
  ours=() theirs=()
  for _ in 1 2 3; do
    ours+=("$(layer_ms "$net" "$batch")")
    theirs+=("$(layer_ms "$net" "$batch" winograd)")
  done
  echo "| $c | $side | $batch | ${ours[*]} | ${theirs[*]} |"
done

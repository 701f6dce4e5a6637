#!/usr/bin/env bash
# Runs mpncov on every malformed net and experiment file of tests/corpus/ and checks that each one is
# refused cleanly: exit status 2, a message naming the file and a line ("file.yaml:LINE"), and no crash,
# sanitizer report or "unexpected error". Nets go through `mpncov inspect` (parse, build, set up);
# experiments through `mpncov train --print-config` (every section) and, when that accepts them,
# `mpncov inspect` (the model composed, built and set up).
#   tests/corpus/check_bad_files.sh MPNCOV_BINARY
set -uo pipefail
mpncov=$1
corpus=$(cd "$(dirname "$0")" && pwd)
failures=0 checked=0

check() {  # check FILE COMMAND...: the command must refuse FILE as the header says
  local file=$1 name
  shift
  name=$(basename "$file")
  out=$("$@" 2>&1)
  status=$?
  if [ $status -ne 2 ] || ! grep -qE "$name:[0-9]+" <<<"$out" || grep -qiE "unexpected error|sanitizer|segmentation|terminate called" <<<"$out"; then
    echo "FAIL: $* -> exit $status:"
    sed 's/^/    /' <<<"$out" | head -20
    failures=$((failures + 1))
  else
    echo "ok   $name: $(grep -m1 -oE "$name:[0-9]+.*" <<<"$out" | cut -c1-150)"
  fi
}

for f in "$corpus"/bad_nets/*.yaml; do
  checked=$((checked + 1))
  check "$f" "$mpncov" inspect "$f"
done
for f in "$corpus"/bad_experiments/*.yaml; do
  checked=$((checked + 1))
  if "$mpncov" train "$f" --print-config >/dev/null 2>&1; then check "$f" "$mpncov" inspect "$f"
  else check "$f" "$mpncov" train "$f" --print-config; fi
done
echo "$checked files, $failures not refused cleanly"
[ $failures -eq 0 ]

#!/usr/bin/env bash
# Part 2: the MLP of Bengio et al. with the lecture's sizes (11,897 parameters). Golden output: golden/part2_mlp.txt
# Usage: examples/part2_mlp.sh [RUN_DIR]   (trains into RUN_DIR unless it already holds a run)
set -euo pipefail
command -v makemore >/dev/null || { echo "makemore is not on PATH: run make setup, then source .venv/bin/activate" >&2; exit 1; }
quick=()  # MAKEMORE_QUICK=1: 500 steps instead of the recipe's (what the test suite runs; golden/quick/)
[ -z "${MAKEMORE_QUICK:-}" ] || quick=(--max-steps 500)
out=${1:-runs/examples/part2}
if [ -f "$out/model.safetensors" ]; then
  echo "using the run already in $out" >&2
else  # training: its evaluations and errors on stderr, the transcript on stdout
  echo "training: makemore train --type mlp -o $out" >&2
  makemore train --type mlp -o "$out" "${quick[@]}" >&2
fi
makemore eval -o "$out"
makemore sample -o "$out" -n 10 --seed 0
makemore score -o "$out" emma zzzq

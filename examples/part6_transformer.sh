#!/usr/bin/env bash
# Part 6: the decoder-only Transformer at makemore.py's size: about 10-15 minutes of training on a
# 2-core AMD EPYC (619.4 s and 914 s measured in two runs), about twice that beside other work. Golden output: golden/part6_transformer.txt
# Usage: examples/part6_transformer.sh [RUN_DIR]   (trains into RUN_DIR unless it already holds a run)
# A 90-second variant: makemore train --type transformer --preset quick (test 1.9534, docs/part6-transformer.md)
set -euo pipefail
command -v makemore >/dev/null || { echo "makemore is not on PATH: run make setup, then source .venv/bin/activate" >&2; exit 1; }
quick=()  # MAKEMORE_QUICK=1: 200 steps instead of the recipe's (what the test suite runs; golden/quick/)
[ -z "${MAKEMORE_QUICK:-}" ] || quick=(--max-steps 200)
out=${1:-runs/examples/part6}
if [ -f "$out/model.safetensors" ]; then
  echo "using the run already in $out" >&2
else  # training: its evaluations and errors on stderr, the transcript on stdout
  echo "training: makemore train --type transformer -o $out ${quick[*]}" >&2
  makemore train --type transformer -o "$out" "${quick[@]}" >&2
fi
makemore eval -o "$out"
makemore sample -o "$out" -n 10 --seed 0
makemore score -o "$out" emma zzzq

#!/usr/bin/env bash
# Part 1: the bigram model, by counting. Golden output: golden/part1_bigram.txt
# Usage: examples/part1_bigram.sh [RUN_DIR]   (trains into RUN_DIR unless it already holds a run)
set -euo pipefail
command -v makemore >/dev/null || { echo "makemore is not on PATH: run make setup, then source .venv/bin/activate" >&2; exit 1; }
out=${1:-runs/examples/part1}
if [ -f "$out/model.safetensors" ]; then
  echo "using the run already in $out" >&2
else  # training: its evaluations and errors on stderr, the transcript on stdout
  echo "training: makemore train --type bigram -o $out" >&2
  makemore train --type bigram -o "$out" >&2
fi
makemore eval -o "$out"
makemore sample -o "$out" -n 10 --seed 0
makemore score -o "$out" emma zzzq

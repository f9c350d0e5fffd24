#!/usr/bin/env bash
# Part 1: the bigram model, by counting. Golden output: golden/part1_bigram.txt
# Usage: examples/part1_bigram.sh [RUN_DIR]   (trains into RUN_DIR unless it already holds a run)
set -euo pipefail
out=${1:-runs/examples/part1}
[ -f "$out/model.safetensors" ] || makemore train --type bigram -o "$out" -q >/dev/null 2>&1
makemore eval -o "$out"
makemore sample -o "$out" -n 8 --seed 0
makemore score -o "$out" emma zzzq

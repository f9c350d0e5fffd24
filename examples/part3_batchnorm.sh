#!/usr/bin/env bash
# Part 3: the BatchNorm MLP (running statistics; sampling one item at a time works). Golden output: golden/part3_batchnorm.txt
# Usage: examples/part3_batchnorm.sh [RUN_DIR]   (trains into RUN_DIR unless it already holds a run)
set -euo pipefail
quick=()  # MAKEMORE_QUICK=1: 500 steps instead of the recipe's (what the test suite runs; golden/quick/)
[ -z "${MAKEMORE_QUICK:-}" ] || quick=(--max-steps 500)
out=${1:-runs/examples/part3}
[ -f "$out/model.safetensors" ] || makemore train --type mlp-bn -o "$out" -q "${quick[@]}" >/dev/null 2>&1
makemore eval -o "$out"
makemore sample -o "$out" -n 10 --seed 0
makemore score -o "$out" emma zzzq

#!/usr/bin/env bash
# Part 6: the decoder-only Transformer at makemore.py's size (7-10 minutes of training on 2 cores). Golden output: golden/part6_transformer.txt
# Usage: examples/part6_transformer.sh [RUN_DIR]   (trains into RUN_DIR unless it already holds a run)
set -euo pipefail
quick=()  # MAKEMORE_QUICK=1: 200 steps instead of the recipe's (what the test suite runs; golden/quick/)
[ -z "${MAKEMORE_QUICK:-}" ] || quick=(--max-steps 200)
out=${1:-runs/examples/part6}
[ -f "$out/model.safetensors" ] || makemore train --type transformer -o "$out" -q "${quick[@]}" >/dev/null 2>&1
makemore eval -o "$out"
makemore sample -o "$out" -n 10 --seed 0
makemore score -o "$out" emma zzzq

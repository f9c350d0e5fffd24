#!/usr/bin/env bash
# Part 5: the lecture's WaveNet (76,579 parameters). Golden output: golden/part5_wavenet.txt
# Usage: examples/part5_wavenet.sh [RUN_DIR]   (trains into RUN_DIR unless it already holds a run)
set -euo pipefail
quick=()  # MAKEMORE_QUICK=1: 300 steps instead of the recipe's (what the test suite runs; golden/quick/)
[ -z "${MAKEMORE_QUICK:-}" ] || quick=(--max-steps 300)
out=${1:-runs/examples/part5}
[ -f "$out/model.safetensors" ] || makemore train --type wavenet -o "$out" -q "${quick[@]}" >/dev/null 2>&1
makemore eval -o "$out"
makemore sample -o "$out" -n 10 --seed 0
makemore score -o "$out" emma zzzq

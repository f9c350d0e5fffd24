#!/usr/bin/env bash
# Part 3: the BatchNorm MLP (running statistics; sampling one item at a time works). Golden output: golden/part3_batchnorm.txt
# Usage: examples/part3_batchnorm.sh [RUN_DIR]   (trains into RUN_DIR unless it already holds a run)
set -euo pipefail
out=${1:-runs/examples/part3}
[ -f "$out/model.safetensors" ] || makemore train --type mlp-bn -o "$out" -q >/dev/null 2>&1
makemore eval -o "$out"
makemore sample -o "$out" -n 10 --seed 0
makemore score -o "$out" emma zzzq

#!/usr/bin/env bash
# Part 2: the MLP of Bengio et al. with the lecture's sizes (11,897 parameters). Golden output: golden/part2_mlp.txt
set -euo pipefail
out=${1:-runs/examples/part2}
rm -rf "$out"
makemore train --type mlp -o "$out/mlp" -q >/dev/null 2>&1
makemore eval -o "$out/mlp"
makemore sample -o "$out/mlp" -n 10 --seed 0
makemore score -o "$out/mlp" emma zzzq

#!/usr/bin/env bash
# Part 1: the bigram model, by counting and by gradient descent. Golden output: golden/part1_bigram.txt
set -euo pipefail
out=${1:-runs/examples/part1}
rm -rf "$out"
makemore train --type bigram -o "$out/counts" -q >/dev/null 2>&1
makemore eval -o "$out/counts"
makemore sample -o "$out/counts" -n 8 --seed 0
makemore score -o "$out/counts" emma zzzq

#!/usr/bin/env bash
# Every figure in docs/img/ drawn again from fresh runs with the default recipes (and their fixed
# default seed): trains what runs/figures/ lacks, then draws. Training every model takes about half
# an hour on a 2-core CPU; a run already in runs/figures/ is reused.
#
#   bash docs/make_figures.sh            (from the repository root, after `make setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
makemore=.venv/bin/makemore
runs=runs/figures
img=docs/img
mkdir -p "$runs" "$img"

train() {  # train NAME [FLAGS...]: runs/figures/NAME, unless it is there already
  local name=$1
  shift
  if [ ! -f "$runs/$name/model.safetensors" ]; then
    "$makemore" train -o "$runs/$name" -q "$@"
  fi
}

for type in bigram bigram-nn mlp mlp-bn mlp-bn-deep wavenet wavenet-conv transformer rnn gru lstm bow; do
  train "$type" --type "$type"
done
train mlp-2d --type mlp --n-embd 2  # Part 2's scatter: an embedding of two dimensions, drawn as it is

"$makemore" plot bigram -o "$runs/bigram" --out "$img/bigram-counts.png" --force
"$makemore" plot embedding -o "$runs/mlp-2d" --out "$img/mlp-embedding-2d.png" --force
"$makemore" plot loss -o "$runs/mlp" --out "$img/mlp-loss.png" --force
"$makemore" plot attention -o "$runs/transformer" --item emma --out "$img/transformer-attention.png" --force
# every model but the 2-D one: the whole progression
"$makemore" compare $(for d in "$runs"/*/; do [ "$(basename "$d")" = mlp-2d ] || echo "$d"; done) --out "$img" --force

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
# Part 3's first half: the lecture's own recipe (SGD, batch 32, 200k steps, /10 at 100k) from the naive init
train mlp-naive-lecture --type mlp --init naive --optimizer sgd --batch-size 32 --learning-rate 0.1 \
  --schedule step --max-steps 200000 --warmup-steps 0 --weight-decay 0 --eval-interval 10000

"$makemore" plot bigram -o "$runs/bigram" --out "$img/bigram-counts.png" --force
"$makemore" plot embedding -o "$runs/mlp-2d" --out "$img/mlp-embedding-2d.png" --force
"$makemore" plot loss -o "$runs/mlp" --out "$img/mlp-loss.png" --force
"$makemore" plot loss -o "$runs/mlp-naive-lecture" --out "$img/mlp-naive-loss.png" --force
"$makemore" plot attention -o "$runs/transformer" --item emma --out "$img/transformer-attention.png" --force
"$makemore" plot dlogits -o "$runs/mlp-bn" --out "$img/mlp-bn-dlogits.png" --force
"$makemore" diagnose -o "$runs/mlp" --out "$runs/mlp-diagnostics" >/dev/null  # Part 3 on the plain mlp
cp "$runs/mlp-diagnostics/init_loss.png" "$img/mlp-init-loss.png"
"$makemore" diagnose -o "$runs/mlp-bn-deep" --out "$runs/mlp-bn-deep-diagnostics" >/dev/null
for plot in activations update_ratio variants_saturation; do
  name=${plot/variants_/}
  cp "$runs/mlp-bn-deep-diagnostics/$plot.png" "$img/mlp-bn-deep-${name//_/-}.png"
done
# every model at its defaults: the whole progression
"$makemore" compare $(for t in bigram bigram-nn mlp mlp-bn mlp-bn-deep wavenet wavenet-conv transformer rnn gru lstm bow; do
  echo "$runs/$t"
done) --out "$img" --force

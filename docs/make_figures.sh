#!/usr/bin/env bash
# Every figure in docs/img/ drawn again from fresh runs with the default recipes (and their fixed
# default seed): trains what runs/figures/ lacks, then draws. Training everything takes about 80
# minutes on a 2-core AMD EPYC -- the sum of these runs' recorded training times: 33 minutes for the
# twelve default runs (docs/img/compare.md), 41 for Part 5's four lecture runs, 4 for Part 2's --
# and more with start-up and evaluations. A run already in runs/figures/ is reused, so a figure
# whose runs are there is drawn again in seconds.
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
    echo "training $name: makemore train $*" >&2
    "$makemore" train -o "$runs/$name" -q "$@"
  fi
}

for type in bigram bigram-nn mlp mlp-bn mlp-bn-deep wavenet wavenet-conv transformer rnn gru lstm bow; do
  train "$type" --type "$type"
done
train mlp-2d --type mlp --n-embd 2  # Part 2's scatter: an embedding of two dimensions, drawn as it is
# Part 1: smoothing the counts and regularising the net, one strength per run
for alpha in 0.1 1 10 100 1000 10000 100000; do
  train "smoothing/bigram-alpha-$alpha" --type bigram --alpha "$alpha"
done
for reg in 0 0.01 0.1 1 10 100; do
  train "smoothing/bigram-nn-reg-$reg" --type bigram-nn --regularization "$reg"
done
# Part 2: the learning-rate finder, one SGD step at each rate from 0.001 to 1
train mlp-lr-sweep --type mlp --optimizer sgd --batch-size 32 --schedule sweep --learning-rate 1 \
  --min-lr-ratio 0.001 --max-steps 1000 --log-interval 1 --weight-decay 0 --eval-interval 1000
# Part 2's network and loop as the lecture wrote them (SGD, batch 32, 200k steps, /10 at 100k, N(0, 1) init),
# its loss logged every 10 steps so that the first few hundred (the hockey stick) have points to draw
train mlp-lecture --type mlp --preset lecture --log-interval 10
# Part 5's steps, each with the lecture's loop (/10 at 150k of 200k) and its BatchNorm momentum 0.1
train part5-flat --type mlp-bn --preset lecture --context-size 8 --step-at 0.75 --bn-momentum 0.1 --log-interval 10
train part5-hierarchical-bug --type wavenet --preset lecture --n-embd 10 --n-hidden 68 --bn-per-position \
  --log-interval 10
train part5-hierarchical --type wavenet --preset lecture --n-embd 10 --n-hidden 68 --log-interval 10
train part5-scaled --type wavenet --preset lecture --log-interval 10

"$makemore" plot bigram -o "$runs/bigram" --out "$img/bigram-counts.png" --force
"$makemore" plot bigram -o "$runs/bigram" --with "$runs/bigram-nn" --out "$img/bigram-counts-vs-nn.png" --force
"$makemore" plot sweep -o "$runs/smoothing" --out "$img/bigram-smoothing.png" --force
"$makemore" plot lr -o "$runs/mlp-lr-sweep" --out "$img/mlp-lr-sweep.png" --force
"$makemore" plot tanh -o "$runs/mlp" --out "$img/mlp-tanh-init.png" --force
"$makemore" plot loss -o "$runs/part5-flat" --with "$runs/part5-hierarchical" --smooth 1000 \
  --out "$img/wavenet-smoothed-loss.png" --force
"$makemore" plot embedding -o "$runs/mlp-2d" --out "$img/mlp-embedding-2d.png" --force
"$makemore" plot loss -o "$runs/mlp" --out "$img/mlp-loss.png" --force
"$makemore" plot loss -o "$runs/mlp-lecture" --log-steps --out "$img/mlp-naive-loss.png" --force
"$makemore" plot attention -o "$runs/transformer" --item emma --out "$img/transformer-attention.png" --force
"$makemore" plot dlogits -o "$runs/mlp-bn" --out "$img/mlp-bn-dlogits.png" --force
"$makemore" diagnose -o "$runs/mlp" --out "$runs/mlp-diagnostics"  # Part 3 on the plain mlp
cp "$runs/mlp-diagnostics/init_loss.png" "$img/mlp-init-loss.png"
"$makemore" diagnose -o "$runs/mlp-bn-deep" --out "$runs/mlp-bn-deep-diagnostics"
for plot in activations gradients update_ratio variants_saturation; do
  name=${plot/variants_/}
  cp "$runs/mlp-bn-deep-diagnostics/$plot.png" "$img/mlp-bn-deep-${name//_/-}.png"
done
# every model at its defaults: the whole progression
"$makemore" compare $(for t in bigram bigram-nn mlp mlp-bn mlp-bn-deep wavenet wavenet-conv transformer rnn gru lstm bow; do
  echo "$runs/$t"
done) --out "$img" --force

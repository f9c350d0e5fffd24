#!/usr/bin/env bash
# Part 4: the hand-written backward pass of the BatchNorm MLP against autograd. Golden output: golden/part4_gradients.txt
set -euo pipefail
command -v makemore >/dev/null || { echo "makemore is not on PATH: run make setup, then source .venv/bin/activate" >&2; exit 1; }
makemore gradcheck

#!/usr/bin/env bash
# Part 4: the hand-written backward pass of the BatchNorm MLP against autograd. Golden output: golden/part4_gradients.txt
set -euo pipefail
makemore gradcheck

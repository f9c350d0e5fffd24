"""Part 1: the bigram model, as a count table and as a one-layer neural net.

Both predict the next character from the previous one only. The counts model is
'trained' by counting; the neural one learns the same table of logits by gradient
descent and ends up within a hair of it (the lecture's point: same model, two routes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..config import option
from .base import ModelConfig, WindowModel


@dataclass
class BigramConfig(ModelConfig):
    alpha: float = option(1.0, "add-alpha smoothing: a pair never seen still gets some probability")


class _Bigram(WindowModel):
    """A window model whose context is always one character."""

    context_size = 1

    @classmethod
    def upgrade(cls, config, state):
        config.pop("block_size", None)  # version 1 stored the fixed context of 1


class BigramCounts(_Bigram):
    Config = BigramConfig
    abilities = frozenset({"fit", "bigram"})
    train_defaults = dict(max_steps=0)

    def __init__(self, config: BigramConfig):
        super().__init__(config)
        V = config.vocab_size
        self.register_buffer("counts", torch.zeros(V, V))
        self.register_buffer("log_probs", torch.full((V, V), -math.log(V)))

    def fit(self, examples):
        V = self.config.vocab_size
        self.counts.zero_()
        for a, b in examples.spans(1 << 20):
            X, Y = examples[a:b]
            pairs = X[:, -1] * V + Y  # flat index of (previous, next)
            self.counts += torch.bincount(pairs, minlength=V * V).view(V, V)
        smoothed = self.counts + self.config.alpha
        self.log_probs.copy_((smoothed / smoothed.sum(1, keepdim=True)).log())

    def bigram_table(self):
        return self.log_probs.exp(), self.counts

    def forward(self, idx):
        # log-probabilities are valid logits: their softmax is the probabilities themselves
        return self.log_probs[idx[:, -1]]


@dataclass
class BigramNNConfig(ModelConfig):
    regularization: float = option(
        0.0,
        "add this x mean(W**2) to the training loss (the lecture: 0.01): pulls W to 0, i.e. the probabilities "
        "toward uniform, as the counts' --alpha does",
    )


class BigramNN(_Bigram):
    """logits = one_hot(prev) @ W, written as the row lookup W[prev] that it equals."""

    Config = BigramNNConfig
    abilities = frozenset({"penalty", "bigram"})
    train_defaults = dict(max_steps=1500, batch_size=8192, learning_rate=0.3, weight_decay=0.0, warmup_steps=0)

    def __init__(self, config: BigramNNConfig):
        super().__init__(config)
        self.W = nn.Parameter(torch.zeros(config.vocab_size, config.vocab_size))

    def penalty(self):
        # W = 0 is the uniform distribution; a pair seen k times must pay this to move its logit
        # away from the others, as add-alpha smoothing pulls toward uniform with alpha pseudo-counts
        return self.config.regularization * self.W.pow(2).mean()  # (0 by default: adds exactly nothing)

    def bigram_table(self):
        return self.W.detach().softmax(1), None

    def forward(self, idx):
        return self.W[idx[:, -1]]

"""Bag of words, as in makemore.py: the step between the MLP and attention.

Each position takes the plain average of the (token + position) embeddings of itself and
every earlier position, then an MLP; the average is attention with all weights equal.
It is causal by construction, so one forward pass predicts every position of an item.

`decode` keeps the running sum of embeddings, so sampling adds one vector per character.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import option
from .base import SequenceConfig, SequenceModel


@dataclass
class BoWConfig(SequenceConfig):
    n_embd: int = option(64, "embedding dimension")
    n_embd2: int = option(64, "width of the MLP's tanh hidden layer")


class BoW(SequenceModel):
    Config = BoWConfig
    abilities = frozenset({"decode", "embedding", "probes"})
    train_defaults = dict(max_steps=10000, batch_size=64, learning_rate=3e-3, weight_decay=0.01, warmup_steps=200)

    def __init__(self, config: BoWConfig):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.positions, config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, config.n_embd2), nn.Tanh(), nn.Linear(config.n_embd2, config.n_embd)
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)

    def hidden_matrices(self):
        return [m.weight for m in self.mlp if isinstance(m, nn.Linear)]

    def _head(self, x, bag):
        x = x + bag  # residual: the token's own embedding plus the average of its context
        hpreact = self.mlp[0](x)
        x = x + self.mlp[2](self.probe(self.mlp[1](hpreact), hpreact))  # the MLP, its tanh offered to diagnostics
        return self.lm_head(x)

    def probe_points(self):
        return ["tanh"]

    def char_embedding(self):
        return self.wte.weight

    def forward(self, idx):
        T = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        # causal average as a matrix product: row t of `weights` is 1/(t+1) on columns 0..t
        weights = torch.ones(T, T, device=idx.device, dtype=x.dtype).tril()
        weights = weights / weights.sum(1, keepdim=True)
        return self._head(x, weights @ x)

    def decode(self, idx, state=None):
        """Logits (B, T, V) for tokens idx continuing from `state` = (sum of embeddings so far,
        count); returns (logits, new state)."""
        B, T = idx.shape
        total, past = (torch.zeros(B, 1, self.config.n_embd, device=idx.device), 0) if state is None else state
        self.check_length(past + T)
        x = self.wte(idx) + self.wpe(torch.arange(past, past + T, device=idx.device))
        sums = total + x.cumsum(dim=1)  # running sum up to and including each new token
        counts = torch.arange(past + 1, past + T + 1, device=idx.device, dtype=x.dtype)[None, :, None]
        return self._head(x, sums / counts), (sums[:, -1:], past + T)

"""Part 2: the MLP language model of Bengio et al. (2003).

Embed each of the context_size previous characters, concatenate, one tanh hidden layer,
then logits. Defaults are the lecture's: embedding 10, context_size 3, hidden 200 —
11,897 parameters on names (27 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import option
from .base import WindowConfig, WindowModel


@dataclass
class MLPConfig(WindowConfig):
    context_size: int = option(3, "previous characters the model sees")
    n_embd: int = option(10, "embedding dimension per character")
    n_hidden: int = option(200, "width of the tanh hidden layer")


class MLP(WindowModel):
    Config = MLPConfig
    train_defaults = dict(max_steps=20000, batch_size=128, learning_rate=0.01, weight_decay=0.01, warmup_steps=200)

    def __init__(self, config: MLPConfig):
        super().__init__(config)
        V, S, E, H = config.vocab_size, config.context_size, config.n_embd, config.n_hidden
        self.C = nn.Parameter(torch.randn(V, E))
        # W1 keeps the (position, embedding) axes separate: the concatenation of the
        # lecture's emb.view(B, S*E) @ W1 is then the single contraction 'bse,seh->bh'.
        # Init scaled by tanh's gain / sqrt(fan_in) so the hidden layer starts unsaturated.
        self.W1 = nn.Parameter(torch.randn(S, E, H) * (5 / 3) / (S * E) ** 0.5)
        self.b1 = nn.Parameter(torch.zeros(H))
        # small output weights: the initial loss is ln(V), not confidently wrong
        self.W2 = nn.Parameter(torch.randn(H, V) * 0.01)
        self.b2 = nn.Parameter(torch.zeros(V))

    def char_embedding(self):
        return self.C

    def forward(self, idx):
        emb = self.C[idx]  # (B, S, E)
        h = torch.tanh(torch.einsum("bse,seh->bh", emb, self.W1) + self.b1)
        return h @ self.W2 + self.b2

"""Part 2: the MLP language model of Bengio et al. (2003).

Embed each of the context_size previous characters, concatenate, one tanh hidden layer,
then logits. Defaults are the lecture's: embedding 10, context_size 3, hidden 200 —
11,897 parameters on names (27 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ..config import option
from .base import WindowConfig, WindowModel, lecture_recipe

# Part 3's initialisations in the lecture's order: (W1, b1, W2, b2) scales of N(0, 1) draws, given
# W1's fan-in. naive: all N(0, 1), confidently wrong at the start (loss ~27 on names); small-output:
# the output layer near zero (loss ln V); scaled: W1 x 0.2 as well, so tanh is not saturated;
# kaiming: W1 x gain / sqrt(fan_in) (5/3 for tanh) and zero biases, the default.
INITS = {
    "naive": lambda fan_in: (1.0, 1.0, 1.0, 1.0),
    "small-output": lambda fan_in: (1.0, 1.0, 0.01, 0.0),
    "scaled": lambda fan_in: (0.2, 0.01, 0.01, 0.0),
    "kaiming": lambda fan_in: ((5 / 3) / fan_in**0.5, 0.0, 0.01, 0.0),
}


@dataclass
class MLPConfig(WindowConfig):
    context_size: int = option(3, "previous characters the model sees")
    n_embd: int = option(10, "embedding dimension per character")
    n_hidden: int = option(200, "width of the tanh hidden layer")
    init: str = option("kaiming", "naive | small-output | scaled | kaiming: Part 3's initialisations, in order")

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.init not in INITS:
            problems.append(f"--init must be one of {', '.join(INITS)}")
        return problems


class MLP(WindowModel):
    Config = MLPConfig
    abilities = frozenset({"embedding", "probes"})
    train_defaults = dict(max_steps=20000, batch_size=128, learning_rate=0.01, weight_decay=0.01, warmup_steps=200)
    # Part 2's network and loop as the lecture wrote them: N(0, 1) weights, lr /10 after 100,000 steps
    presets = {"lecture": lecture_recipe(0.5, init="naive")}

    def __init__(self, config: MLPConfig):
        super().__init__(config)
        V, S, E, H = config.vocab_size, config.context_size, config.n_embd, config.n_hidden
        self.C = nn.Parameter(torch.randn(V, E))
        # W1 keeps the (position, embedding) axes separate: the concatenation of the
        # lecture's emb.view(B, S*E) @ W1 is then the single contraction 'bse,seh->bh'.
        W1, W2 = torch.randn(S, E, H), torch.randn(H, V)
        # the biases are drawn only where an init scales them (kaiming's draws stay those of before)
        drawn = config.init != "kaiming"
        b1, b2 = (torch.randn(H), torch.randn(V)) if drawn else (torch.zeros(H), torch.zeros(V))
        w1, c1, w2, c2 = INITS[config.init](S * E)
        self.W1 = nn.Parameter(W1 * w1)
        self.b1 = nn.Parameter(b1 * c1)
        self.W2 = nn.Parameter(W2 * w2)
        self.b2 = nn.Parameter(b2 * c2)

    def diagnostic_variants(self):
        """The run's config, then each of Part 3's initialisations: the first loss (the hockey stick)
        and the saturation of the tanh layer under each."""
        c = self.config
        return [(f"run: init {c.init}", c)] + [(f"init {i}", replace(c, init=i)) for i in INITS if i != c.init]

    def char_embedding(self):
        return self.C

    def probe_points(self):
        return ["tanh"]

    def forward(self, idx):
        emb = self.C[idx]  # (B, S, E)
        hpreact = torch.einsum("bse,seh->bh", emb, self.W1) + self.b1
        h = self.probe(torch.tanh(hpreact), hpreact)  # (B, H); probe: diagnostics may look at it
        return h @ self.W2 + self.b2

"""Part 3: the MLP with BatchNorm, and the deeper "PyTorch-ified" network of the lecture.

mlp-bn:      C -> W1 (no bias) -> BatchNorm -> tanh -> W2, b2.   12,097 parameters on names.
mlp-bn-deep: C -> n_layer x (Linear no bias -> BatchNorm -> tanh) -> Linear -> BatchNorm.

BatchNorm (models/batchnorm.py) normalises each hidden unit over the batch while training and
keeps running estimates of the mean and variance; eval mode (evaluation, sampling) uses those
running estimates, so one example alone gets exactly the logits it gets inside any batch.

mlp-bn also has Part 4's hand-written backward pass (`manual_grad`), built from the gradient
formulas in makemore/backprop.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .. import backprop
from ..config import option
from .base import WindowConfig, WindowModel, lecture_recipe
from .batchnorm import BatchNorm
from .mlp import INITS, MLP, MLPConfig


@dataclass
class MLPBNConfig(WindowConfig):
    context_size: int = option(3, "previous characters the model sees")
    n_embd: int = option(10, "embedding dimension per character")
    n_hidden: int = option(200, "width of the BatchNorm + tanh hidden layer")
    bn_momentum: float = option(0.001, "weight of each batch in the running mean/var (the lecture: 0.001)")
    bn_eps: float = option(1e-5, "added to the variance before the square root")
    init: str = option("kaiming", "naive | small-output | scaled | kaiming: Part 3's initialisations (as mlp's)")

    def problems(self) -> list[str]:
        problems = super().problems()
        if not 0 < self.bn_momentum <= 1:
            problems.append("--bn-momentum must be in (0, 1]")
        if self.init not in INITS:
            problems.append(f"--init must be one of {', '.join(INITS)}")
        return problems


class MLPBN(WindowModel):
    Config = MLPBNConfig
    abilities = frozenset({"manual_grad", "embedding", "probes"})
    # lr 0.003, not the plain MLP's 0.01: BatchNorm makes W1's scale free, and at 0.01 Adam's
    # steps stay too large for it (dev 2.156 after 30k steps; 2.104 at 0.003; 2.095 at 60k steps)
    train_defaults = dict(max_steps=60000, batch_size=128, learning_rate=0.003, weight_decay=0.01, warmup_steps=200)
    presets = {"lecture": lecture_recipe(0.5)}  # Part 3's loop around its BatchNorm network

    def __init__(self, config: MLPBNConfig):
        super().__init__(config)
        V, S, E, H = config.vocab_size, config.context_size, config.n_embd, config.n_hidden
        self.C = nn.Parameter(torch.randn(V, E))
        # no b1: BatchNorm's beta takes its place. BatchNorm also undoes W1's scale, so of the
        # initialisations only the output layer's (small-output onwards) changes the first loss.
        w1, _, w2, c2 = INITS[config.init](S * E)
        self.W1 = nn.Parameter(torch.randn(S * E, H) * w1)
        self.bn = BatchNorm(H, config.bn_momentum, config.bn_eps, shape=(1, H))
        W2 = torch.randn(H, V)
        b2 = torch.randn(V) if config.init != "kaiming" else torch.zeros(V)  # kaiming: the draws of before
        self.W2 = nn.Parameter(W2 * w2)
        self.b2 = nn.Parameter(b2 * c2)

    def _hprebn(self, idx):
        emb = self.C[idx]  # (B, S, E)
        embcat = emb.view(emb.shape[0], -1)  # (B, S*E)
        return emb, embcat, embcat @ self.W1  # (B, H)

    def char_embedding(self):
        return self.C

    def probe_points(self):
        return ["tanh"]

    def forward(self, idx):
        hpreact = self.bn(self._hprebn(idx)[2])
        h = self.probe(torch.tanh(hpreact), hpreact)  # probe: diagnostics may look at it
        return h @ self.W2 + self.b2

    @torch.no_grad()
    def manual_grad(self, X, Y):
        """Part 4: one training step's loss, with p.grad of every parameter filled by hand (no
        autograd). The forward is forward()'s own pieces, so the loss is bitwise the one autograd's
        path sees; the gradients come from backprop's fused forms. Window models' targets never
        hold the padding value, so there is no ignore_index here."""
        emb, embcat, hprebn = self._hprebn(X)
        mean, var = self.bn.batch_stats(hprebn)
        self.bn.update_running(mean, var)
        h = torch.tanh(self.bn.normalize(hprebn, mean, var))
        logits = h @ self.W2 + self.b2
        loss = F.cross_entropy(logits, Y)

        dlogits = backprop.cross_entropy_backward(logits, Y)
        dhpreact = (1.0 - h**2) * (dlogits @ self.W2.T)
        bnvar_inv = (var + self.bn.eps) ** -0.5
        bnraw = (hprebn - mean) * bnvar_inv
        dhprebn = backprop.batchnorm_backward(dhpreact, self.bn.gamma, bnraw, bnvar_inv)
        grads = {
            "W2": h.T @ dlogits,
            "b2": dlogits.sum(0),
            "bn.gamma": (bnraw * dhpreact).sum(0, keepdim=True),
            "bn.beta": dhpreact.sum(0, keepdim=True),
            "W1": embcat.T @ dhprebn,
            "C": backprop.embedding_backward(self.C, X, (dhprebn @ self.W1.T).view(emb.shape)),
        }
        for name, param in self.named_parameters():
            param.grad = grads[name]
        return loss

    @classmethod
    def upgrade(cls, config, state):
        super().upgrade(config, state)
        renamed = {
            "bngain": "bn.gamma",
            "bnbias": "bn.beta",
            "bnmean_running": "bn.running_mean",
            "bnvar_running": "bn.running_var",
        }  # version 1 kept its BatchNorm inline
        for old, new in renamed.items():
            if f"model.{old}" in state:
                state[f"model.{new}"] = state.pop(f"model.{old}")

    @torch.no_grad()
    def fold(self) -> MLP:
        """The eval-mode network as a plain `mlp`: BatchNorm folded into W1 and a bias b1.

        gain * (x W1 - mean) / sqrt(var + eps) + bias = x (W1 * s) + (bias - mean * s),
        with s = gain / sqrt(var + eps) per hidden unit.
        """
        c = self.config
        mlp = MLP(MLPConfig(vocab_size=c.vocab_size, context_size=c.context_size, n_embd=c.n_embd, n_hidden=c.n_hidden))
        bn = self.bn
        s = bn.gamma / torch.sqrt(bn.running_var + bn.eps)  # (1, H)
        mlp.C.copy_(self.C)
        mlp.W1.copy_((self.W1 * s).view(c.context_size, c.n_embd, c.n_hidden))
        mlp.b1.copy_((bn.beta - bn.running_mean * s).view(-1))
        mlp.W2.copy_(self.W2)
        mlp.b2.copy_(self.b2)
        return mlp.to(self.device).eval()


# --- the deeper network, built from layers as in the lecture's "PyTorch-ifying" section ------------
class Linear(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, bias: bool = True, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_in, fan_out) * gain / fan_in**0.5)
        self.bias = nn.Parameter(torch.zeros(fan_out)) if bias else None

    def forward(self, x):
        out = x @ self.weight
        return out if self.bias is None else out + self.bias


@dataclass
class DeepConfig(MLPBNConfig):
    n_hidden: int = option(100, "width of each hidden layer")
    n_layer: int = option(5, "hidden layers (Linear -> BatchNorm -> tanh each)", repeats=True)
    bn_momentum: float = option(0.01, "weight of each batch in the running mean/var")
    norm: str = option("batchnorm", "batchnorm | none (then every Linear has a bias instead)")
    init_gain: float = option(5 / 3, "hidden weights are randn * gain / sqrt(fan_in); 5/3 suits tanh")

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.norm not in ("batchnorm", "none"):
            problems.append("--norm must be batchnorm or none")
        return problems


class MLPBNDeep(WindowModel):
    Config = DeepConfig
    abilities = frozenset({"embedding", "probes"})
    train_defaults = dict(max_steps=30000, batch_size=128, learning_rate=0.01, weight_decay=0.01, warmup_steps=200)

    def __init__(self, config: DeepConfig):
        super().__init__(config)
        c = config
        bn = c.norm == "batchnorm"
        self.C = nn.Parameter(torch.randn(c.vocab_size, c.n_embd))
        layers, fan_in = [], c.context_size * c.n_embd
        for _ in range(c.n_layer):
            layers.append(Linear(fan_in, c.n_hidden, bias=not bn, gain=c.init_gain))
            if bn:
                layers.append(BatchNorm(c.n_hidden, c.bn_momentum, c.bn_eps))
            layers.append(nn.Tanh())
            fan_in = c.n_hidden
        layers.append(Linear(fan_in, c.vocab_size, bias=not bn))
        if bn:
            layers.append(BatchNorm(c.vocab_size, c.bn_momentum, c.bn_eps))
        self.layers = nn.Sequential(*layers)
        with torch.no_grad():  # a less confident last layer: the initial loss is near ln(V)
            last = self.layers[-1]
            (last.gamma if bn else last.weight).mul_(0.1)

    def char_embedding(self):
        return self.C

    def probe_points(self):
        return [f"tanh {i + 1}" for i in range(self.config.n_layer)]

    def forward(self, idx):
        emb = self.C[idx]
        x = emb.view(emb.shape[0], -1)
        for layer in self.layers:
            pre, x = x, layer(x)
            if isinstance(layer, nn.Tanh):
                x = self.probe(x, pre)  # each tanh layer's output: what Part 3's diagnostics look at
        return x

    @torch.no_grad()
    def fold(self) -> MLPBNDeep:
        """The eval-mode network with every BatchNorm folded into the Linear before it (norm=none)."""
        c = self.config
        if c.norm == "none":
            return self
        plain = MLPBNDeep(DeepConfig(**{**c.__dict__, "norm": "none"}))
        plain.C.copy_(self.C)
        linears = [m for m in self.layers if isinstance(m, Linear)]
        norms = [m for m in self.layers if isinstance(m, BatchNorm)]
        for target, lin, bn in zip([m for m in plain.layers if isinstance(m, Linear)], linears, norms):
            s = bn.gamma / torch.sqrt(bn.running_var + bn.eps)
            target.weight.copy_(lin.weight * s)
            target.bias.copy_(bn.beta - bn.running_mean * s)
        return plain.to(self.device).eval()

    def diagnostic_variants(self):
        """The run's config, then with and without BatchNorm and with bad init gains: Part 3's
        comparison of what normalisation and initialisation do to saturation and gradients."""
        c = self.config
        out = [(f"run: {c.norm}, gain {c.init_gain:.3g}", c)]
        for norm, gain in (("batchnorm", 5 / 3), ("none", 5 / 3), ("none", 1.0), ("none", 5.0), ("batchnorm", 5.0)):
            if (norm, round(gain, 6)) != (c.norm, round(c.init_gain, 6)):
                out.append((f"{norm}, gain {gain:.3g}", replace(c, norm=norm, init_gain=gain)))
        return out
